%%% Settings for ejabberd_auth_external_component (auth_method: [external_component]).
%%%
%%% ejabberd (23.01, 24.12) rejects unknown top-level options and gives auth backends no
%%% option table of their own, so the backend's settings live here, in a
%%% module that does nothing but carry validated options (per vhost, so
%%% host_config works as usual):
%%%
%%%   modules:
%%%     mod_auth_external_component:
%%%       component: auth.example.com   # default: "auth." ++ the vhost
%%%       timeout: 10                   # seconds (or "2500 ms"); default 10
%%%       scram: false                  # true: a SCRAM store; default false
%%%
%%% Leaving the module out is allowed: the backend then uses the defaults.
-module(mod_auth_external_component).

-behaviour(gen_mod).

%% gen_mod callbacks
-export([start/2, stop/1, reload/3, depends/2, mod_options/1, mod_opt_type/1, mod_doc/0]).
%% read by ejabberd_auth_external_component
-export([component/1, timeout/1, scram/1]).

-define(DEFAULT_TIMEOUT_MS, 10000).

mod_options(Host) ->
    [{component, <<"auth.", Host/binary>>},
     {timeout, ?DEFAULT_TIMEOUT_MS},
     {scram, false}].

mod_opt_type(component) -> econf:domain();
mod_opt_type(timeout) -> econf:timeout(second);
mod_opt_type(scram) -> econf:bool().

%% @doc The component JID that answers urn:x-extauth:0 requests for Host.
-spec component(binary()) -> binary().
component(Host) ->
    option(Host, component).

%% @doc How long one request may take, in milliseconds.
-spec timeout(binary()) -> pos_integer().
timeout(Host) ->
    option(Host, timeout).

%% @doc Whether the backend is a SCRAM store for Host: ejabberd then runs SCRAM (and
%% checks PLAIN) itself with credentials fetched through the component.
-spec scram(binary()) -> boolean().
scram(Host) ->
    option(Host, scram).

%% The module is optional: without it (or before gen_mod has started it) the
%% defaults apply.
option(Host, Name) ->
    try gen_mod:get_module_opt(Host, ?MODULE, Name)
    catch error:_ -> proplists:get_value(Name, mod_options(Host))
    end.

start(_Host, _Opts) -> ok.
stop(_Host) -> ok.
reload(_Host, _NewOpts, _OldOpts) -> ok.
depends(_Host, _Opts) -> [].

mod_doc() ->
    #{desc => [<<"Options of the external_component auth method "
                 "(ejabberd_auth_external_component).">>],
      opts => [{component, #{value => <<"Domain">>,
                             desc => <<"JID of the extauth component. "
                                       "Default: auth.HOST.">>}},
               {timeout, #{value => <<"timeout()">>,
                           desc => <<"How long one request may take. "
                                     "Default: 10 seconds.">>}},
               {scram, #{value => <<"true | false">>,
                         desc => <<"Fetch SCRAM credentials (for the hash of "
                                   "auth_scram_hash) through the component, so that "
                                   "ejabberd runs SCRAM and checks PLAIN itself. "
                                   "Default: false (PLAIN only, checked by the script).">>}}]}.
