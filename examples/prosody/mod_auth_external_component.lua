-- mod_auth_external_component: Prosody authentication through extauth-component.
-- Tested with Prosody 0.12 (Debian 12) and Prosody 13 (Debian 13, Debian 12's bookworm-backports).
--
-- Every check is an IQ (namespace urn:x-extauth:0) to an XEP-0114 component that asks an
-- external script. The IQ is awaited inside Prosody's async runner, so other sessions are served
-- meanwhile. An error, a timeout or an unconnected component is "temporarily unavailable"
-- (SASL temporary-auth-failure), never "wrong password": only the script's 0 means that.
--
--   VirtualHost "example.com"
--     authentication = "external_component"
--     external_auth_component = "auth.example.com"  -- or { "auth1...", "auth2..." }: a balanced set
--     external_auth_timeout = 10                      -- seconds per component
--     external_auth_scram = { "sha-256" }             -- SCRAM too (default: none, PLAIN only)
--
-- Clients log in with PLAIN (the password goes to the script as `auth`), and with SCRAM when
-- external_auth_scram names hashes: Prosody then runs SCRAM-SHA-256 (and its -PLUS form where it
-- can bind the TLS channel) itself, with the salted credentials the script returns for `scram`,
-- so the password never leaves the client.
--
-- With several components, each request goes to the connected component with the fewest
-- requests in flight (ties in turn). A component that is not connected or does not answer in
-- time is skipped for a while (1 s, doubling up to 30 s while it keeps failing; no longer once
-- it connects again). auth, isuser and scram move on to another component after any failure;
-- setpass, tryregister and removeuser move on only when nothing reached the component (Prosody
-- bounced the IQ: not connected), so a slow password change never runs twice. After a password
-- change or removal, the other components are told to forget what they cached about that user.
--
-- This file is MIT licensed, like the rest of extauth-component.

local async = require "util.async";
local base64_decode = require "util.encodings".base64.decode;
local new_id = require "util.id".medium;
local new_sasl = require "util.sasl".new;
local st = require "util.stanza";
local time_now = require "util.time".now;
local monotonic = require "util.time".monotonic;

local host = module.host;
local timeout = module:get_option_number("external_auth_timeout", 10);
local component_jids = module:get_option_array("external_auth_component", { "auth." .. host });
local scram_hashes = module:get_option_array("external_auth_scram", {}); -- none: PLAIN only

local xmlns_extauth = "urn:x-extauth:0";
local BACKOFF_MIN, BACKOFF_MAX = 1, 30; -- seconds a failing component is skipped

local components = {}; -- { jid, in_flight, failures, skip_until }
for _, jid in ipairs(component_jids) do
	table.insert(components, { jid = jid, in_flight = 0, failures = 0, skip_until = 0 });
end
local next_turn = 0; -- rotates the first choice among equally loaded components

-- SCRAM: each hash named must be one util.sasl runs on this Prosody (0.12 and 13 know SHA-1 and
-- SHA-256); the key length is what the script's stored and server keys must have. A wrong name
-- stops the module from loading rather than leaving clients with fewer mechanisms than planned.
local SCRAM_KEY_LENGTH = { ["sha-1"] = 20, ["sha-256"] = 32, ["sha-512"] = 64 };
local scram = {}; -- util.sasl profile key (scram_sha_256) -> { hash = "sha-256", key_length = 32 }
for _, name in ipairs(scram_hashes) do
	local hash = tostring(name):lower();
	local key = "scram_" .. hash:gsub("-", "_");
	local offered = SCRAM_KEY_LENGTH[hash] and new_sasl(host, { [key] = function () end }):mechanisms();
	if not (offered and offered["SCRAM-" .. hash:upper()]) then
		error(("external_auth_scram: %q is not a SCRAM hash this Prosody offers; use \"sha-256\" or \"sha-1\"")
			:format(tostring(name)));
	end
	scram[key] = { hash = hash, key_length = SCRAM_KEY_LENGTH[hash] };
end

-- Our own IQ tracking rather than module:send_iq(): that one keeps at most 256 IQs in flight
-- (more concurrent logins would be evicted as failures) and hooks and unhooks two events per
-- request, which costs Prosody CPU on every login. It also tells us how a reply came back: from
-- the component (iq/host below), or bounced by Prosody through the origin we send with (the
-- component is not connected, so nothing reached it), which decides whether a password change
-- may be sent to another component.
local pending = {}; -- IQ id -> { component = jid, deadline = monotonic time, finish = function(reply, bounced) }
local unloaded = false;

-- IQ ids: a random prefix per load and a counter. Only replies from the addressed component
-- (or bounced by Prosody itself) are matched, so ids need not be unguessable, only unique; the
-- prefix keeps a late reply to a request of a previous load from matching a new one. Cheaper
-- than drawing random bytes from the kernel for every request.
local id_prefix, id_count = new_id() .. ":", 0;
local function next_id()
	id_count = id_count + 1;
	return id_prefix .. id_count;
end

local function deliver(reply, bounced)
	local id = reply.attr.id;
	local request = id and pending[id];
	if not request or reply.attr.from ~= request.component then return false; end
	pending[id] = nil;
	request.finish(reply, bounced);
	return true;
end

-- Answers come back addressed to this host; run before mod_iq.
module:hook("iq/host", function (event)
	local type = event.stanza.attr.type;
	if (type == "result" or type == "error") and deliver(event.stanza, false) then return true; end
end, 10);

-- When a component is not connected, Prosody bounces the error back through the origin the IQ
-- was sent with, not to the host: this origin routes it to the waiting request.
local host_session = prosody.hosts[host];
local origin = setmetatable({
	send = function (reply)
		if deliver(reply, true) then return true; end
		return host_session.send(reply);
	end;
}, { __index = host_session });

-- One timer for all requests rather than one each (adding and stopping a timer per request is a
-- measurable part of a login's cost): armed while requests wait, it fires at the oldest
-- deadline, ends the requests that are due, and sets itself for the next. Deadlines only grow
-- (each is now + the same timeout), so a new request never needs it sooner.
local sweeping = false;
local function sweep()
	local now, due = monotonic(), {};
	for id, request in pairs(pending) do
		if request.deadline <= now then due[#due + 1] = id; end
	end
	for _, id in ipairs(due) do
		local request = pending[id];
		if request then pending[id] = nil; request.finish(nil, false); end -- may send new requests
	end
	local next_deadline;
	for _, request in pairs(pending) do
		if not next_deadline or request.deadline < next_deadline then next_deadline = request.deadline; end
	end
	if not next_deadline then sweeping = false; return nil; end
	return math.max(next_deadline - monotonic(), 0.001); -- fire again then
end

-- Sends one IQ; finish(reply, bounced) is called with its reply, or with nothing after the
-- timeout or when the module is unloaded meanwhile.
local function send(component, iq, finish)
	pending[iq.attr.id] = { component = component, deadline = monotonic() + timeout, finish = finish };
	if not sweeping then
		sweeping = true;
		module:add_timer(timeout, sweep);
	end
	module:send(iq, origin);
end

-- Sends one IQ and waits (yielding, never blocking) for its reply. Returns the reply and whether
-- Prosody bounced it, or nothing after the timeout or when the module is unloaded meanwhile.
local function exchange(component, iq)
	local wait, done = async.waiter();
	local reply, bounced = nil, false;
	send(component, iq, function (stanza, was_bounced)
		reply, bounced = stanza, was_bounced;
		done();
	end);
	wait();
	return reply, bounced;
end

-- On unload (and so on reload), every request still waiting is answered at once: its login gets
-- temporary-auth-failure instead of hanging on a waiter nothing will ever wake.
function module.unload()
	unloaded = true;
	local waiting = pending;
	pending = {};
	for _, request in pairs(waiting) do request.finish(nil, false); end
end

-- The components to try, best first: those not being skipped, fewest in flight first (ties in
-- turn); then those being skipped, soonest back first, so a request is still tried when every
-- component is failing (one may be back already).
local function candidates()
	local n = #components;
	if n == 1 then return components; end -- the common case: nothing to choose
	local now = time_now();
	next_turn = next_turn % n + 1;
	local order = {};
	for i = 1, n do
		local c = components[(next_turn + i - 2) % n + 1];
		order[i] = { c = c, skipped = c.skip_until > now, turn = i };
	end
	table.sort(order, function (a, b)
		if a.skipped ~= b.skipped then return b.skipped; end
		if a.skipped then
			if a.c.skip_until ~= b.c.skip_until then return a.c.skip_until < b.c.skip_until; end
		elseif a.c.in_flight ~= b.c.in_flight then
			return a.c.in_flight < b.c.in_flight;
		end
		return a.turn < b.turn;
	end);
	for i, entry in ipairs(order) do order[i] = entry.c; end
	return order;
end

local function failed(c)
	c.failures = c.failures + 1;
	c.skip_until = time_now() + math.min(BACKOFF_MIN * 2 ^ (c.failures - 1), BACKOFF_MAX);
end

local function succeeded(c)
	c.failures, c.skip_until = 0, 0;
end

-- A component that (re)connects is used again at once, whatever its backoff.
local by_jid = {};
for _, c in ipairs(components) do by_jid[c.jid] = c; end
local function watch(jid)
	module:context(jid):hook("component-authenticated", function ()
		local c = by_jid[jid];
		if c then succeeded(c); end
	end);
end
for jid in pairs(by_jid) do
	if prosody.hosts[jid] then watch(jid); end
end
module:hook_global("host-activated", function (activated)
	if by_jid[activated] then watch(activated); end
end);

-- auth, isuser and scram only read: asking another component after any failure is safe.
local read_only = { auth = true, isuser = true, scram = true };

-- Asks the components until one answers. Returns true and the answer element, or false (the
-- script's 1 or 0), and the component that answered; or nil and a reason when none could answer.
-- `text` is the password, if the request has one; `extra` more attributes (scram's hash).
local function ask(request, iq_type, username, text, extra)
	if not async.ready() then
		-- Waiting here would freeze the server; refuse instead (fail closed).
		module:log("error", "%s for %s outside an async context: refused", request, username);
		return nil, "not in an async context";
	end
	local reason = "no component configured";
	for _, c in ipairs(candidates()) do
		if unloaded then return nil, "module unloaded"; end
		local attr = { xmlns = xmlns_extauth, user = username, server = host };
		for name, value in pairs(extra or {}) do attr[name] = value; end
		local iq = st.iq({ type = iq_type, from = host, to = c.jid, id = next_id() }):tag(request, attr);
		if text then iq:text(text); end
		c.in_flight = c.in_flight + 1;
		local reply, bounced = exchange(c.jid, iq);
		c.in_flight = c.in_flight - 1;
		local reached = true; -- whether the request may have reached the component
		if unloaded then
			return nil, "module unloaded";
		elseif not reply then
			reason = ("no answer within %g s"):format(timeout);
			failed(c);
		elseif reply.attr.type == "result" then
			succeeded(c);
			local answer = reply:get_child(request, xmlns_extauth);
			local result = answer and answer.attr.result;
			if result == "true" then return true, answer, c; end
			if result == "false" then return false, nil, c; end
			reason = "malformed reply";
		else -- an error from the component, or bounced by Prosody (component not connected)
			local _, condition, error_text = reply:get_error();
			reason = tostring(condition) .. (error_text and (" (" .. error_text .. ")") or "");
			if bounced then
				reached = false;
				failed(c);
			else
				succeeded(c); -- connected and answering; the error is about this request
			end
		end
		module:log("warn", "%s for %s via %s failed: %s", request, username, c.jid, reason);
		if reached and not read_only[request] then
			-- It may have been done (or still be under way) there: asking another component
			-- could run it twice. Report the failure instead.
			return nil, reason;
		end
	end
	return nil, reason;
end

-- After a password change or removal through one component, the others drop what they cached
-- about the user, so the old password is refused by every instance at once. Nobody waits for
-- these: a component that misses one serves the old password until its cache entry expires.
local function forget_elsewhere(username, answered_by)
	for _, c in ipairs(components) do
		if c ~= answered_by then
			local iq = st.iq({ type = "set", from = host, to = c.jid, id = next_id() })
				:tag("forget", { xmlns = xmlns_extauth, user = username, server = host });
			send(c.jid, iq, function (reply)
				if reply and reply.attr.type == "result" then return; end
				local reason = ("no answer within %g s"):format(timeout);
				if reply then reason = tostring(select(2, reply:get_error())); end
				module:log("warn", "forget for %s via %s failed: %s (it may accept the old password until its cache expires)",
					username, c.jid, reason);
			end);
		end
	end
end

-- Asks for a change of the store (setpass, removeuser) and, once done, tells the other components.
local function change(request, username, text)
	local answer, detail, answered_by = ask(request, "set", username, text);
	if answer then forget_elsewhere(username, answered_by); end
	return answer, detail;
end

-- Maps an answer to what Prosody's auth providers return: true, or nil and a reason.
local function outcome(refused, answer, reason)
	if answer then return true; end
	if answer == false then return nil, refused; end
	return nil, "authentication service unavailable: " .. reason;
end

-- Registrations Prosody 13 has begun without a password. create_user_with_role() calls
-- create_user(username, nil), then stores the role, then set_password(username, password), all
-- in the registering session's thread. The script can only create an account with its
-- password, so create_user(username, nil) just notes the username for that thread, and the
-- set_password that follows in the same thread goes to the script as tryregister, with the
-- password. A set_password from any other session stays a setpass, so a registration can never
-- be turned into a password change of someone else's account.
local registering = setmetatable({}, { __mode = "k" }); -- thread -> { username, expiry }
local REGISTERING_FOR = 60; -- seconds; Prosody sets the password right after create_user

local function take_registration(username)
	local thread = coroutine.running();
	local registration = registering[thread];
	if not registration or registration.username ~= username then return false; end
	registering[thread] = nil;
	return registration.expiry >= time_now();
end

local provider = {};

function provider.test_password(username, password)
	return outcome("Invalid username or password", ask("auth", "get", username, password));
end

function provider.user_exists(username)
	return outcome("No such user", ask("isuser", "get", username));
end

function provider.set_password(username, password)
	if take_registration(username) then
		return outcome("Registration refused", ask("tryregister", "set", username, password));
	end
	return outcome("Password change refused", change("setpass", username, password));
end

function provider.create_user(username, password)
	if password == nil then
		registering[coroutine.running()] = { username = username, expiry = time_now() + REGISTERING_FOR };
		return true;
	end
	return outcome("Registration refused", ask("tryregister", "set", username, password));
end

function provider.delete_user(username)
	local registration = registering[coroutine.running()];
	if registration and registration.username == username then
		-- A registration Prosody gave up before it set the password: it never reached the script.
		registering[coroutine.running()] = nil;
		return true;
	end
	return outcome("Account removal refused", change("removeuser", username));
end

function provider.users()
	return function() end; -- the script cannot list its users
end

-- Prosody 13 account state. The script decides at every login whether a user may log in, so
-- as far as Prosody knows an account is always enabled; disabling or enabling one is done in
-- the script's store. enable/disable are deliberately absent: Prosody then reports them as
-- "method not implemented", which its registration path accepts.
function provider.is_enabled(username) -- luacheck: ignore 212
	return true;
end

-- No account metadata (creation time, password change time) is kept here.
function provider.get_account_info(username) -- luacheck: ignore 212
	return { enabled = true };
end

-- SASL. util.sasl answers not-authorized whenever a profile function finds no credentials, so
-- the functions below note an unavailable service on the handler, and process() turns that
-- failure into temporary-auth-failure.

-- PLAIN: the password goes to the script (`auth`).
local function plain_test(sasl, username, password)
	local answer = ask("auth", "get", username, password);
	sasl.service_unavailable = (answer == nil);
	return answer == true, true;
end

-- The base64 text of a SCRAM answer's attribute, decoded; nil unless it is canonical base64 of
-- the expected length (any non-zero length when none is given).
local function decode(text, length)
	if not text or #text % 4 ~= 0 or not text:match("^[A-Za-z0-9+/]+=?=?$") then return nil; end
	local bytes = base64_decode(text);
	if not bytes or #bytes == 0 or (length and #bytes ~= length) then return nil; end
	return bytes;
end

-- SCRAM: util.sasl calls scram_<hash>(sasl, username) on the client's first message, in the
-- session's async context as for PLAIN, and runs the exchange with what it returns: stored key,
-- server key, iterations, salt, and true (nil: no such user or no credentials: not-authorized).
-- The keys are secrets like passwords: never logged.
local scram_profile = {}; -- scram_sha_256 = function, for each external_auth_scram hash
for key, credentials in pairs(scram) do
	scram_profile[key] = function (sasl, username)
		local answer, reply = ask("scram", "get", username, nil, { hash = credentials.hash });
		if answer ~= true then
			sasl.service_unavailable = (answer == nil);
			return nil;
		end
		local iterations = tonumber(reply.attr.iterations and reply.attr.iterations:match("^%d+$"));
		local salt = decode(reply.attr.salt);
		local stored_key = decode(reply.attr["stored-key"], credentials.key_length);
		local server_key = decode(reply.attr["server-key"], credentials.key_length);
		if not (iterations and iterations >= 1 and iterations <= 10000000 and salt and stored_key and server_key) then
			module:log("warn", "scram for %s: the credentials the component sent are malformed", username);
			sasl.service_unavailable = true;
			return nil;
		end
		return stored_key, server_key, iterations, salt, true;
	end;
end

local function with_outage_condition(handler)
	local process, clean_clone = handler.process, handler.clean_clone;
	function handler:process(message)
		self.service_unavailable = false;
		local status, condition, text = process(self, message);
		if status == "failure" and self.service_unavailable then
			return "failure", "temporary-auth-failure", "Authentication service unavailable, try again later";
		end
		return status, condition, text;
	end
	-- A retry on the same stream gets the same behaviour and, on 0.12 too, the channel binding
	-- data (0.12's clean_clone keeps the profile's binding but drops the data it reads).
	function handler:clean_clone()
		local clone = clean_clone(self);
		clone.userdata = clone.userdata or self.userdata;
		return with_outage_condition(clone);
	end
	return handler;
end

-- The handler for one session: PLAIN, and SCRAM for each external_auth_scram hash. util.sasl
-- offers their -PLUS forms when mod_saslauth adds a channel binding to the profile (TLS), as for
-- Prosody's own accounts; so each session gets its own profile.
function provider.get_sasl_handler()
	local profile = { plain_test = plain_test };
	for key, fetch in pairs(scram_profile) do profile[key] = fetch; end
	return with_outage_condition(new_sasl(host, profile));
end

module:provides("auth", provider);
