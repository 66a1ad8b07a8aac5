-- Example Prosody configuration (13 or 0.12): users of example.com are authenticated by an external
-- script, through extauth-component (an XEP-0114 component). Only the parts that matter here;
-- merge them into your own /etc/prosody/prosody.cfg.lua. See docs/prosody.md.

-- Where Prosody finds mod_auth_external_component.lua: the package installed with
-- `npm install -g --prefix /usr/local` (docs/operations.md). Or copy the file into
-- /usr/lib/prosody/modules/ and leave plugin_paths alone.
plugin_paths = { "/usr/local/lib/node_modules/extauth-component/examples/prosody" }

modules_enabled = {
	"saslauth";  -- SASL: the shim provides PLAIN, and SCRAM with external_auth_scram
	"tls";       -- PLAIN sends the password in the clear: keep TLS on
	"disco";
	"register";  -- lets users change their password (XEP-0077) -> the script's setpass
	"ping";
	-- ... your other modules
}

-- Clients must use TLS before PLAIN is offered (Prosody's defaults; keep them).
c2s_require_encryption = true

-- The component connects here. Keep it on loopback (or a private network): the handshake
-- is a shared secret, and the stream is not encrypted.
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

VirtualHost "example.com"
	authentication = "external_component"

	-- The component's JID. A list, e.g. { "auth1.example.com", "auth2.example.com" }, shares
	-- the load: each check goes to the one with the fewest in flight; one that is not connected
	-- or times out is skipped for a while, and logins move on to another (docs/prosody.md).
	external_auth_component = "auth.example.com"

	-- Seconds to wait for one component's answer (default 10). Keep it above the component's
	-- EXTERNAL_AUTH_TIMEOUT (default 5) so the component's own timeout error arrives first.
	external_auth_timeout = 10

	-- SCRAM logins (the password never leaves the client), with credentials the script answers
	-- for "scram:USER:SERVER:sha-256". Only when every account has them (docs/prosody.md, 4a).
	-- external_auth_scram = { "sha-256" }

	-- User registration by clients goes through the script's tryregister:
	-- allow_registration = true

-- The component itself. Its JID must match XMPP_DOMAIN and the secret XMPP_SECRET.
-- By default the component only answers requests from its parent domain (example.com),
-- which is the VirtualHost the shim sends from.
Component "auth.example.com"
	component_secret = "change me: a long random string"
