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
%%%
%%% The answer is <NAME result='true'|'false'/>. Anything else -- a stanza
%%% error, no answer within the timeout, no component connected -- is a
%%% backend failure: it is logged as such (never with the password) and the
%%% caller gets "no" (check_password) or {error, db_failure}; the session
%%% never crashes. ejabberd's auth API is boolean, so a client still sees
%%% SASL not-authorized; only the log tells a backend failure from a wrong
%%% password.
%%%
%%% Settings (component JID, timeout) come from mod_auth_external_component.
%%% Caching follows ejabberd's own auth_use_cache / auth_cache_life_time
%%% (set auth_use_cache: false to ask the component on every login).
-module(ejabberd_auth_external_component).

-behaviour(ejabberd_auth).

-export([start/1, stop/1, plain_password_required/1, store_type/1,
         check_password/4, user_exists/2, set_password/3, try_register/3,
         remove_user/2]).
%% filter_packet hook: hands the component's replies to the waiting process
-export([filter_reply/1]).

-include("logger.hrl").
-include("xmpp.hrl").

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

%% Only the cleartext password can be forwarded, so offer only SASL PLAIN.
plain_password_required(_Host) -> true.

store_type(_Host) -> external.

check_password(User, AuthzId, Server, Password) ->
    if AuthzId /= <<>>, AuthzId /= User -> {nocache, false};  % no impersonation
       Password == <<>> -> {nocache, false};
       true ->
           case ask(auth, get, User, Server, Password) of
               {ok, Bool} -> {cache, Bool};
               {error, _} -> {nocache, false}
           end
    end.

user_exists(User, Server) ->
    case ask(isuser, get, User, Server, none) of
        {ok, Bool} -> {cache, Bool};
        {error, _} -> {nocache, {error, db_failure}}
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
%%% One request, one IQ, one deadline
%%%----------------------------------------------------------------------
-spec ask(atom(), get | set, binary(), binary(), binary() | none) ->
          {ok, boolean()} | {error, term()}.
ask(Name, Type, User, Server, Password) ->
    {Component, Timeout, Result} =
        try
            C = mod_auth_external_component:component(Server),
            T = mod_auth_external_component:timeout(Server),
            {C, T, ask(Name, Type, User, Server, Password, C, T)}
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

ask(Name, Type, User, Server, Password, Component, Timeout) ->
    case is_utf8(Password) of
        false -> {ok, false};  % SASL hands over raw bytes; no user has such a password
        true ->
            case ejabberd_router:is_my_route(Component) of
                false -> {error, not_connected};
                true -> call(request(Name, Type, User, Server, Component, Password), Timeout)
            end
    end.

is_utf8(none) -> true;
is_utf8(Text) -> is_binary(unicode:characters_to_binary(Text)).

request(Name, Type, User, Server, Component, Password) ->
    Text = case Password of
               none -> [];
               _ -> [{xmlcdata, Password}]
           end,
    #iq{type = Type,
        from = jid:make(Server),
        to = jid:make(Component),
        sub_els = [#xmlel{name = atom_to_binary(Name, utf8),
                          attrs = [{<<"xmlns">>, ?NS_EXTAUTH},
                                   {<<"user">>, User},
                                   {<<"server">>, Server}],
                          children = Text}]}.

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

answer(Name, Els) ->
    Matches = [fxml:get_attr_s(<<"result">>, Attrs)
               || #xmlel{name = N, attrs = Attrs} <- Els, N == Name,
                  fxml:get_attr_s(<<"xmlns">>, Attrs) == ?NS_EXTAUTH],
    case Matches of
        [<<"true">>] -> {ok, true};
        [<<"false">>] -> {ok, false};
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
