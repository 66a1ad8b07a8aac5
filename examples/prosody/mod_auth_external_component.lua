-- mod_auth_external_component: Prosody 0.12 authentication through extauth-component.
--
-- Every check is an IQ (namespace urn:x-extauth:0) to an XEP-0114 component that asks an
-- external script. The IQ is awaited inside Prosody's async runner, so other sessions are served
-- meanwhile. An error, a timeout or an unconnected component is "temporarily unavailable"
-- (SASL temporary-auth-failure), never "wrong password": only the script's 0 means that.
--
--   VirtualHost "example.com"
--     authentication = "external_component"
--     external_auth_component = "auth.example.com"  -- or { "auth1...", "auth2..." }: failover order
--     external_auth_timeout = 10                      -- seconds per component
--
-- This file is MIT licensed, like the rest of extauth-component.

local async = require "util.async";
local new_id = require "util.id".medium;
local new_sasl = require "util.sasl".new;
local st = require "util.stanza";

local host = module.host;
local components = module:get_option_array("external_auth_component", { "auth." .. host });
local timeout = module:get_option_number("external_auth_timeout", 10);

local xmlns_extauth = "urn:x-extauth:0";

-- Our own IQ tracking rather than module:send_iq(): that one keeps at most 256 IQs in flight
-- (more concurrent logins would be evicted as failures) and hooks and unhooks two events per
-- request, which costs Prosody CPU on every login.
local pending = {}; -- IQ id -> { component = jid, finish = function(reply) }

local function deliver(reply)
	local id = reply.attr.id;
	local request = id and pending[id];
	if not request or reply.attr.from ~= request.component then return false; end
	pending[id] = nil;
	request.finish(reply);
	return true;
end

-- Answers come back addressed to this host; run before mod_iq.
module:hook("iq/host", function (event)
	local type = event.stanza.attr.type;
	if (type == "result" or type == "error") and deliver(event.stanza) then return true; end
end, 10);

-- When a component is not connected, Prosody bounces the error through the sender's origin.
local host_session = prosody.hosts[host];
local origin = setmetatable({
	send = function (reply)
		if deliver(reply) then return true; end
		return host_session.send(reply);
	end;
}, { __index = host_session });

-- Sends one IQ and waits (yielding, never blocking) for its reply; nil after the timeout.
local function exchange(component, iq)
	local wait, done = async.waiter();
	local id, reply = iq.attr.id, nil;
	pending[id] = { component = component, finish = function (stanza) reply = stanza; done(); end };
	local timer = module:add_timer(timeout, function ()
		if pending[id] then pending[id] = nil; done(); end
	end);
	module:send(iq, origin);
	wait();
	timer:stop();
	return reply;
end

-- Asks the components, in order, until one answers. Returns true or false (the script's 1 or 0),
-- or nil and a reason when none could answer. `text` is the password, if the request has one.
local function ask(request, iq_type, username, text)
	if not async.ready() then
		-- Waiting here would freeze the server; refuse instead (fail closed).
		module:log("error", "%s for %s outside an async context: refused", request, username);
		return nil, "not in an async context";
	end
	local reason = "no component configured";
	for _, component in ipairs(components) do
		local iq = st.iq({ type = iq_type, from = host, to = component, id = new_id() })
			:tag(request, { xmlns = xmlns_extauth, user = username, server = host });
		if text then iq:text(text); end
		local reply = exchange(component, iq);
		if not reply then
			reason = ("no answer within %g s"):format(timeout);
		elseif reply.attr.type == "result" then
			local answer = reply:get_child(request, xmlns_extauth);
			local result = answer and answer.attr.result;
			if result == "true" then return true; end
			if result == "false" then return false; end
			reason = "malformed reply";
		else -- an error from the component, or bounced by Prosody (component not connected)
			local _, condition, error_text = reply:get_error();
			reason = tostring(condition) .. (error_text and (" (" .. error_text .. ")") or "");
		end
		module:log("warn", "%s for %s via %s failed: %s", request, username, component, reason);
	end
	return nil, reason;
end

-- Maps an answer to what Prosody's auth providers return: true, or nil and a reason.
local function outcome(refused, answer, reason)
	if answer then return true; end
	if answer == false then return nil, refused; end
	return nil, "authentication service unavailable: " .. reason;
end

local provider = {};

function provider.test_password(username, password)
	return outcome("Invalid username or password", ask("auth", "get", username, password));
end

function provider.user_exists(username)
	return outcome("No such user", ask("isuser", "get", username));
end

function provider.set_password(username, password)
	return outcome("Password change refused", ask("setpass", "set", username, password));
end

function provider.create_user(username, password)
	if not password then return nil, "A password is required"; end
	return outcome("Registration refused", ask("tryregister", "set", username, password));
end

function provider.delete_user(username)
	return outcome("Account removal refused", ask("removeuser", "set", username));
end

function provider.users()
	return function() end; -- the script cannot list its users
end

-- SASL PLAIN. util.sasl's PLAIN can only say not-authorized when plain_test fails, so the handler
-- remembers an unavailable service and turns that failure into temporary-auth-failure.
local function plain_test(sasl, username, password)
	local answer = ask("auth", "get", username, password);
	sasl.service_unavailable = (answer == nil);
	return answer == true, true;
end

local function sasl_handler()
	local handler = new_sasl(host, { plain_test = plain_test });
	local process = handler.process;
	function handler:process(message)
		self.service_unavailable = false;
		local status, condition, text = process(self, message);
		if status == "failure" and self.service_unavailable then
			return "failure", "temporary-auth-failure", "Authentication service unavailable, try again later";
		end
		return status, condition, text;
	end
	handler.clean_clone = sasl_handler; -- a retry on the same stream gets the same behaviour
	return handler;
end

function provider.get_sasl_handler()
	return sasl_handler();
end

module:provides("auth", provider);
