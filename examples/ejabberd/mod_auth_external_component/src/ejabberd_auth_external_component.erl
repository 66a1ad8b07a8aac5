%%% ejabberd auth backend (tested with 24.12 and 23.01) that asks an extauth component over XMPP.
%%%
%%%   auth_method: [external_component]
%%%
%%% Every call becomes one IQ in urn:x-extauth:0, sent from the vhost's bare
%%% domain (e.g. example.com) to the component (e.g. auth.example.com), which
%%% by default accepts requests from exactly that parent domain:
%%%
%%%   check_password -> <auth user= server=>PASSWORD</auth>        type get
%%%   user_exists    -> <isuser user= server=/>                    type get
%%%   set_password   -> <setpass user= server=>PASSWORD</setpass>  type set
%%%   try_register   -> <tryregister user= server=>PASSWORD</...>  type set
%%%   remove_user    -> <removeuser user= server=/>                type set
%%%   get_password   -> <scram user= server= hash=/>               type get (scram: true)
%%%
%%% The answer is <NAME result='true'|'false'/>. Anything else -- a stanza
%%% error, no answer within the timeout, no component connected -- is a
%%% backend failure: it is logged as such (never with the password) and the
%%% caller gets "no" (check_password) or {error, db_failure}; the session
%%% never crashes. ejabberd's auth API is boolean, so a client still sees
%%% SASL not-authorized; only the log tells a backend failure from a wrong
%%% password.
%%%
%%% With `scram: true` (mod_auth_external_component) the backend is a SCRAM
%%% store: ejabberd asks get_password for the user's SCRAM credentials of its
%%% auth_scram_hash, answered <scram result='true' iterations= salt=
%%% stored-key= server-key=/> (base64) or result='false' (no such user, or no
%%% credentials for that hash), and runs SCRAM -- and checks PLAIN -- itself;
%%% no password reaches the component. ejabberd then calls neither
%%% check_password nor user_exists: a user exists when it has credentials.
%%% In that mode ejabberd hands set_password/try_register a SCRAM hash, not
%%% the password, so they are refused (the script can't store it).
%%%
%%% Settings (component JID, timeout, scram) come from mod_auth_external_component.
%%% Caching follows ejabberd's own auth_use_cache / auth_cache_life_time
%%% (set auth_use_cache: false to ask the component on every login).
-module(ejabberd_auth_external_component).

-behaviour(ejabberd_auth).

-export([start/1, stop/1, plain_password_required/1, store_type/1,
         check_password/4, user_exists/2, get_password/2, set_password/3,
         try_register/3, remove_user/2]).
%% filter_packet hook: hands the component's replies to the waiting process
-export([filter_reply/1]).

-include("logger.hrl").
-include("xmpp.hrl").
-include("scram.hrl").

-define(NS_EXTAUTH, <<"urn:x-extauth:0">>).
%% Our IQ ids: this prefix, then the waiting process's alias (base64 of its external term).
-define(ID_PREFIX, "extauth-").
%% Before every other filter_packet hook: a reply of ours needs nothing else.
-define(FILTER_SEQ, 10).

%%%----------------------------------------------------------------------
%%% ejabberd_auth callbacks
%%%----------------------------------------------------------------------
%% The filter is global (ejabberd routes every stanza through filter_packet),
%% so it is added once, whatever the number of vhosts using this backend, and
%% removed when the last of them stops using it.
start(_Host) ->
    ejabberd_hooks:add(filter_packet, ?MODULE, filter_reply, ?FILTER_SEQ).

stop(Host) ->
    case [H || H <- ejabberd_option:hosts(), H /= Host, uses_backend(H)] of
        [] -> ejabberd_hooks:delete(filter_packet, ?MODULE, filter_reply, ?FILTER_SEQ);
        _ -> ok
    end.

uses_backend(Host) ->
    try lists:member(?MODULE, ejabberd_auth:auth_modules(Host))
    catch _:_ -> false
    end.

%% No digest mechanisms (mod_legacy_auth's digest, DIGEST-MD5): the script checks
%% cleartext passwords, and a SCRAM store has no cleartext to digest either.
plain_password_required(_Host) -> true.

%% external: ejabberd offers PLAIN and hands the password to check_password.
%% scram: ejabberd offers SCRAM for its auth_scram_hash (and PLAIN) and checks
%% both itself against what get_password fetched.
store_type(Host) ->
    case mod_auth_external_component:scram(Host) of
        true -> scram;
        false -> external
    end.

check_password(User, AuthzId, Server, Password) ->
    if AuthzId /= <<>>, AuthzId /= User -> {nocache, false};  % no impersonation
       Password == <<>> -> {nocache, false};
       true ->
           case ask(auth, get, User, Server, Password) of
               {ok, Bool} -> {cache, Bool};
               {error, _} -> {nocache, false}
           end
    end.

%% Never cached by ejabberd: since this module has get_password/2, ejabberd
%% would read a cached "exists" (or "not found") as the user's password on the
%% next login.
user_exists(User, Server) ->
    case ask(isuser, get, User, Server, none) of
        {ok, Bool} -> {nocache, Bool};
        {error, _} -> {nocache, {error, db_failure}}
    end.

%% Called by ejabberd before check_password and user_exists, whatever the store
%% type. In the plain mode there is nothing to fetch: `error` sends ejabberd on
%% to check_password / user_exists.
%%
%% A SCRAM store answers the credentials. When fetching them fails (outage,
%% timeout, bad answer), `error` would read as "no such user" (ejabberd then
%% bounces messages to the user and calls the account free), so the answer is
%% credentials no password matches: the login fails (SASL not-authorized, as
%% for a wrong password; the log says why) and nothing is cached.
get_password(User, Server) ->
    case mod_auth_external_component:scram(Server) of
        false -> {nocache, error};
        true ->
            Hash = ejabberd_option:auth_scram_hash(Server),
            case ask_scram(User, Server, Hash) of
                {ok, #scram{} = Scram} -> {cache, {ok, Scram}};
                {ok, false} -> {cache, error};
                {error, _} -> {nocache, {ok, unusable_scram(Hash)}}
            end
    end.

set_password(User, Server, Password) when is_binary(Password) ->
    case ask(setpass, set, User, Server, Password) of
        {ok, true} -> {cache, {ok, Password}};
        {ok, false} -> {nocache, {error, not_allowed}};
        {error, _} -> {nocache, {error, db_failure}}
    end;
set_password(_User, _Server, _Scram) ->
    {nocache, {error, not_allowed}}.

try_register(User, Server, Password) when is_binary(Password) ->
    case ask(tryregister, set, User, Server, Password) of
        {ok, true} -> {cache, {ok, Password}};
        {ok, false} -> {nocache, {error, not_allowed}};
        {error, _} -> {nocache, {error, db_failure}}
    end;
try_register(_User, _Server, _Scram) ->
    {nocache, {error, not_allowed}}.

remove_user(User, Server) ->
    case ask(removeuser, set, User, Server, none) of
        {ok, true} -> ok;
        {ok, false} -> {error, not_allowed};
        {error, _} -> {error, db_failure}
    end.

%%%----------------------------------------------------------------------
%%% SCRAM credentials
%%%----------------------------------------------------------------------
-spec ask_scram(binary(), binary(), sha | sha256 | sha512) ->
          {ok, #scram{} | false} | {error, term()}.
ask_scram(User, Server, Hash) ->
    logged(scram, User, Server,
           fun(Component, Timeout) ->
                   IQ = request(scram, get, User, Server, [{<<"hash">>, hash_name(Hash)}],
                                Component, []),
                   case call(IQ, Timeout) of
                       {ok, Attrs} -> scram_answer(Attrs, Hash);
                       {error, _} = Err -> Err
                   end
           end).

hash_name(sha) -> <<"sha-1">>;
hash_name(sha256) -> <<"sha-256">>;
hash_name(sha512) -> <<"sha-512">>.

%% The component checks the answer already; checked again here because these
%% values go straight into ejabberd's SCRAM exchange and cache.
scram_answer(Attrs, Hash) ->
    case fxml:get_attr_s(<<"result">>, Attrs) of
        <<"false">> -> {ok, false};
        <<"true">> ->
            KeyLength = byte_size(crypto:hash(Hash, <<>>)),
            try
                Iterations = binary_to_integer(fxml:get_attr_s(<<"iterations">>, Attrs)),
                Salt = base64:decode(fxml:get_attr_s(<<"salt">>, Attrs)),
                StoredKey = base64:decode(fxml:get_attr_s(<<"stored-key">>, Attrs)),
                ServerKey = base64:decode(fxml:get_attr_s(<<"server-key">>, Attrs)),
                true = Iterations >= 1 andalso Iterations =< 10000000,
                true = byte_size(Salt) > 0,
                true = byte_size(StoredKey) == KeyLength,
                true = byte_size(ServerKey) == KeyLength,
                {ok, #scram{storedkey = base64:encode(StoredKey),
                            serverkey = base64:encode(ServerKey),
                            salt = base64:encode(Salt),
                            hash = Hash,
                            iterationcount = Iterations}}
            catch _:_ -> {error, malformed_answer}  % never the values: they are secrets
            end;
        _ -> {error, malformed_answer}
    end.

%% Credentials of the right shape that no password matches (random keys).
unusable_scram(Hash) ->
    KeyLength = byte_size(crypto:hash(Hash, <<>>)),
    #scram{storedkey = base64:encode(crypto:strong_rand_bytes(KeyLength)),
           serverkey = base64:encode(crypto:strong_rand_bytes(KeyLength)),
           salt = base64:encode(crypto:strong_rand_bytes(16)),
           hash = Hash,
           iterationcount = ?SCRAM_DEFAULT_ITERATION_COUNT}.

%%%----------------------------------------------------------------------
%%% One request, one IQ, one deadline
%%%----------------------------------------------------------------------
-spec ask(atom(), get | set, binary(), binary(), binary() | none) ->
          {ok, boolean()} | {error, term()}.
ask(Name, Type, User, Server, Password) ->
    logged(Name, User, Server,
           fun(Component, Timeout) ->
                   case is_utf8(Password) of
                       false -> {ok, false};  % SASL hands over raw bytes; no user has such a password
                       true ->
                           Text = case Password of
                                      none -> [];
                                      _ -> [{xmlcdata, Password}]
                                  end,
                           IQ = request(Name, Type, User, Server, [], Component, Text),
                           case call(IQ, Timeout) of
                               {ok, Attrs} -> boolean_answer(Attrs);
                               {error, _} = Err -> Err
                           end
                   end
           end).

%% Runs Ask(Component, Timeout) for the vhost Server; logs a failure (never a
%% password or a key) and turns any exception into one.
logged(Name, User, Server, Ask) ->
    {Component, Timeout, Result} =
        try
            C = mod_auth_external_component:component(Server),
            T = mod_auth_external_component:timeout(Server),
            case ejabberd_router:is_my_route(C) of
                false -> {C, T, {error, not_connected}};
                true -> {C, T, Ask(C, T)}
            end
        catch Class:Reason ->  % whatever happens, the caller's session lives on
            {unknown, 0, {error, {Class, scrub(Reason)}}}
        end,
    case Result of
        {ok, _} -> ok;
        {error, Why} ->
            ?ERROR_MSG("external_component auth backend error: ~ts for ~ts@~ts via ~ts: ~ts",
                       [Name, User, Server, Component, format_reason(Why, Timeout)])
    end,
    Result.

is_utf8(none) -> true;
is_utf8(Text) -> is_binary(unicode:characters_to_binary(Text)).

request(Name, Type, User, Server, ExtraAttrs, Component, Children) ->
    #iq{type = Type,
        from = jid:make(Server),
        to = jid:make(Component),
        sub_els = [#xmlel{name = atom_to_binary(Name, utf8),
                          attrs = [{<<"xmlns">>, ?NS_EXTAUTH},
                                   {<<"user">>, User},
                                   {<<"server">>, Server} | ExtraAttrs],
                          children = Children}]}.

%% Blocks the calling process (a c2s session, an IQ handler, ...) for at most
%% Timeout ms. The IQ's id names a process alias of the caller; the reply is
%% taken off the router by filter_reply/1 and sent straight to that alias.
%% ejabberd_router:route_iq/4 would do the same through the ejabberd_iq
%% process: per request a message to it on the way out (its timer) and one
%% through it on the way back, two SHA-1 checksums and an ETS entry, all of
%% it on the path of every login. The alias is dropped on timeout (and after
%% the first reply), so a late or doubled answer is discarded by the VM
%% instead of landing in the caller's mailbox.
call(IQ, Timeout) ->
    Name = (hd(IQ#iq.sub_els))#xmlel.name,
    Alias = erlang:alias([reply]),
    ID = <<?ID_PREFIX, (base64:encode(term_to_binary(Alias)))/binary>>,
    ejabberd_router:route(IQ#iq{id = ID}),
    receive
        {?MODULE, Alias, Reply} -> reply(Name, Reply)
    after Timeout ->
            erlang:unalias(Alias),
            receive {?MODULE, Alias, Reply} -> reply(Name, Reply)
            after 0 -> {error, timeout}
            end
    end.

reply(Name, #iq{type = result, sub_els = Els}) -> answer(Name, Els);
reply(_Name, #iq{type = error} = Err) -> {error, {stanza_error, error_condition(Err)}}.

%% filter_packet hook, run by the process routing each stanza. A result or
%% error with one of our ids, from the component that serves the vhost it is
%% addressed to, goes to the alias in its id and no further; anything else
%% passes untouched. (The component is the only sender that can use its own
%% domain: ejabberd checks the from of a component's stanzas, and a c2s or
%% s2s sender cannot claim it.)
filter_reply(#iq{type = Type, id = <<?ID_PREFIX, Key/binary>>,
                 from = #jid{lserver = From}, to = #jid{luser = <<>>, lserver = Host}} = IQ)
  when Type == result; Type == error ->
    case alias_of(Key) of
        {ok, Alias} ->
            case is_component(From, Host) of
                true ->
                    Alias ! {?MODULE, Alias, IQ},
                    {stop, drop};
                false -> IQ
            end;
        error -> IQ
    end;
filter_reply(Packet) ->
    Packet.

alias_of(Key) ->
    try binary_to_term(base64:decode(Key), [safe]) of
        Alias when is_reference(Alias) -> {ok, Alias};
        _ -> error
    catch _:_ -> error
    end.

is_component(From, Host) ->
    try mod_auth_external_component:component(Host) of
        Component -> From == jid:nameprep(Component)
    catch _:_ -> false
    end.

%% The attributes of the one answer element (same name, our namespace).
answer(Name, Els) ->
    case [Attrs || #xmlel{name = N, attrs = Attrs} <- Els, N == Name,
                   fxml:get_attr_s(<<"xmlns">>, Attrs) == ?NS_EXTAUTH] of
        [Attrs] -> {ok, Attrs};
        _ -> {error, malformed_answer}
    end.

boolean_answer(Attrs) ->
    case fxml:get_attr_s(<<"result">>, Attrs) of
        <<"true">> -> {ok, true};
        <<"false">> -> {ok, false};
        _ -> {error, malformed_answer}
    end.

error_condition(Err) ->
    try xmpp:get_error(Err) of
        #stanza_error{reason = Reason} when Reason /= undefined -> Reason;
        _ -> undefined_condition
    catch _:_ -> undecodable_error
    end.

format_reason(timeout, Timeout) ->
    io_lib:format("no answer within ~B ms", [Timeout]);
format_reason(not_connected, _) ->
    "component not connected (no route)";
format_reason({stanza_error, Condition}, _) ->
    io_lib:format("component answered with error ~p", [Condition]);
format_reason(Other, _) ->
    io_lib:format("~p", [Other]).

%% An exception's reason may hold the call's arguments, password included: keep its name only.
scrub(Reason) when is_atom(Reason) -> Reason;
scrub(Reason) when is_tuple(Reason), is_atom(element(1, Reason)) -> element(1, Reason);
scrub(_) -> unknown.
