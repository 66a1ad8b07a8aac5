-- luacheck over the Prosody shim (npm run lint). Prosody runs a module with two globals of its
-- own: `module` (the module's API) and `prosody` (the server). Naming the fields the shim uses
-- keeps a misspelt API call (module:get_option_nubmer) an error.
std = "max"
max_line_length = 120

read_globals = {
	prosody = { fields = { hosts = { other_fields = true } } },
	module = {
		fields = {
			host = {},
			unload = { read_only = false }, -- Prosody calls module.unload when the module is unloaded
			add_timer = {}, context = {}, get_option_array = {}, get_option_number = {},
			hook = {}, hook_global = {}, log = {}, provides = {}, send = {},
		},
	},
}
