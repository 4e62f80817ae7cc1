#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% pyra_compose: the Erlang side of the mixed-cluster topology (docker-compose.yml, and
%% scripts/compose_local.py which starts the same topology as local processes).
%%
%% Owns three commands, each a real distribution node:
%%   node NAME DATA_DIR     run a Ra 2.2.0 node: start Ra's default system on DATA_DIR,
%%                          restart the servers registered there (Ra leaves that to its
%%                          user, as RabbitMQ does for quorum queues), print "ready NAME",
%%                          then run until SIGTERM (init:stop/0, erts' default handler).
%%   ready NODE             health check: exit 0 if NODE answers net_adm:ping and its Ra
%%                          default system is started (ra_system:fetch(default)).
%%   form CLUSTER ERLANG_NODE... --python PYTHON_NODE...
%%                          the one-shot step: wait until every node answers ping, run
%%                          ra:start_cluster(default, CLUSTER, {simple, fun erlang:'+'/2, 0},
%%                          ServerIds) with one server on every node (skipped when the
%%                          cluster already answers, e.g. after a restart from the volumes),
%%                          then a smoke test: commands through Erlang and Python members
%%                          and through the ra API served by a Python node, members listing
%%                          every node, every member applying the same state. Exit 0 when
%%                          every check passed, 1 otherwise.
%%
%% Environment: ERLANG_COOKIE (required; the distribution cookie), RA_EBIN (optional,
%% ':'-separated ebin dirs of Ra 2.2.0 and its deps; default: Debian's rabbitmq-server
%% plugins), PYRA_CTL_HOST (optional; host part of the hidden node that `ready` and `form`
%% start, default the host of the first node named on the command line).
%%
%% Node names with a dotted host or an IP address are long names (-name), others short
%% names (-sname), as erl decides.
%%
%% Must not: change anything on the nodes beyond what the command says (no code loading,
%% no configuration), or keep running after the command is done (`ready`, `form`).

-mode(interpret).

main(["node", Name, DataDir]) ->
    run_node(Name, DataDir);
main(["ready", Node]) ->
    ready(Node);
main(["form", Cluster | Rest]) ->
    case lists:splitwith(fun(A) -> A =/= "--python" end, Rest) of
        {[_ | _] = Erlang, ["--python", _ | _] = [_ | Python]} -> form(Cluster, Erlang, Python);
        _ -> usage()
    end;
main(_) ->
    usage().

usage() ->
    io:format(standard_error,
              "usage: pyra_compose.escript node NAME DATA_DIR~n"
              "       pyra_compose.escript ready NODE~n"
              "       pyra_compose.escript form CLUSTER ERLANG_NODE... --python PYTHON_NODE...~n", []),
    halt(2).

fail(Format, Args) ->
    io:format(standard_error, "pyra_compose: " ++ Format ++ "~n", Args),
    halt(1).

%% ---------------------------------------------------------------------------------------
%% Distribution and code path
%% ---------------------------------------------------------------------------------------

cookie() ->
    case os:getenv("ERLANG_COOKIE") of
        false -> fail("ERLANG_COOKIE is not set (the cluster's distribution cookie)", []);
        "" -> fail("ERLANG_COOKIE is empty", []);
        Cookie -> list_to_atom(Cookie)
    end.

host(Node) ->
    case string:split(Node, "@") of
        [_, Host] when Host =/= "" -> Host;
        _ -> fail("~s is not a node name (alive@host)", [Node])
    end.

%% erl's rule: long names need a dotted host (or an address), short names must not have one.
name_domain(Host) ->
    case {lists:member($., Host), inet:parse_address(Host)} of
        {false, {error, _}} -> shortnames;
        _ -> longnames
    end.

%% Like erl at boot: make sure an epmd runs (`epmd -daemon` returns at once if one does).
start_distribution(Name, Hidden) ->
    Cookie = cookie(),
    _ = os:cmd("epmd -daemon"),
    Options = #{name_domain => name_domain(host(Name)), hidden => Hidden},
    case net_kernel:start(list_to_atom(Name), Options) of
        {ok, _} -> ok;
        {error, Reason} -> fail("cannot start distribution as ~s: ~9999p", [Name, Reason])
    end,
    true = erlang:set_cookie(Cookie),
    ok.

%% A hidden helper node next to the nodes it checks; its name is unique per OS process.
start_ctl(Role, FirstNode) ->
    Host = case os:getenv("PYRA_CTL_HOST") of
               false -> host(FirstNode);
               "" -> host(FirstNode);
               H -> H
           end,
    start_distribution("pyra_" ++ Role ++ "_" ++ os:getpid() ++ "@" ++ Host, true).

ra_ebin_dirs() ->
    case os:getenv("RA_EBIN") of
        Set when Set =/= false, Set =/= "" ->
            string:lexemes(Set, ":");
        _ ->
            Root = "/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/",
            [case lists:sort(filelib:wildcard(Root ++ Dep ++ "/ebin")) of
                 [] -> fail("~s not found under ~s: apt-get install rabbitmq-server, or set RA_EBIN",
                            [Dep, Root]);
                 Found -> lists:last(Found)
             end
             || Dep <- ["ra-2.2.0", "gen_batch_server-*", "aten-*", "seshat-*"]]
    end.

add_ra_code_path() ->
    ok = code:add_pathsa(ra_ebin_dirs()),
    case code:which(ra) of
        non_existing -> fail("Ra is not on the code path (RA_EBIN=~9999p)", [os:getenv("RA_EBIN")]);
        _ -> ok
    end.

%% ---------------------------------------------------------------------------------------
%% node: a Ra 2.2.0 node
%% ---------------------------------------------------------------------------------------

run_node(Name, DataDir) ->
    start_distribution(Name, false),
    add_ra_code_path(),
    ok = filelib:ensure_dir(filename:join(DataDir, "ra")),
    ok = application:load(ra),
    % Ra keeps each node's data under DataDir/NodeName (ra_system:default_config/0).
    ok = application:set_env(ra, data_dir, DataDir),
    {ok, _} = application:ensure_all_started(ra),
    {ok, _} = ra_system:start_default(),
    Restarted = [{Server, ra:restart_server(default, {Server, node()})}
                 || {Server, _UId} <- ra_directory:list_registered(default)],
    [io:format("restarted ~9999p: ~9999p~n", [Server, Result]) || {Server, Result} <- Restarted],
    {ok, Vsn} = application:get_key(ra, vsn),
    io:format("ready ~s (Ra ~s, data dir ~s)~n", [node(), Vsn, DataDir]),
    receive after infinity -> ok end.

%% ---------------------------------------------------------------------------------------
%% ready: the health check of an Erlang node
%% ---------------------------------------------------------------------------------------

ready(NodeName) ->
    start_ctl("ready", NodeName),
    Node = list_to_atom(NodeName),
    case net_adm:ping(Node) of
        pong -> ok;
        pang -> fail("~s does not answer ping", [NodeName])
    end,
    case rpc:call(Node, ra_system, fetch, [default], 5000) of
        #{} -> io:format("~s: Ra default system running~n", [NodeName]), halt(0);
        Other -> fail("~s: no Ra default system yet: ~9999p", [NodeName, Other])
    end.

%% ---------------------------------------------------------------------------------------
%% form: start the cluster and run the smoke test
%% ---------------------------------------------------------------------------------------

-define(WAIT_MS, 60000).

form(ClusterName, ErlangNames, PythonNames) ->
    start_ctl("form", hd(ErlangNames)),
    add_ra_code_path(),
    Erlang = [list_to_atom(N) || N <- ErlangNames],
    Python = [list_to_atom(N) || N <- PythonNames],
    Nodes = Erlang ++ Python,
    Cluster = list_to_atom(ClusterName),
    Ids = [{Cluster, N} || N <- Nodes],
    wait_for_nodes(Nodes, erlang:monotonic_time(millisecond) + ?WAIT_MS),
    say("all ~b nodes answer ping: ~9999p", [length(Nodes), Nodes]),
    Machine = {simple, fun erlang:'+'/2, 0},
    % Servers already running (restarted from the volumes by `node` / `pyra node`): the
    % cluster exists; otherwise form it.
    case [Id || Id <- Ids, element(1, catch ra:ping(Id, 2000)) =:= pong] of
        [] ->
            case ra:start_cluster(default, Cluster, Machine, Ids) of
                {ok, Started, []} ->
                    say("ra:start_cluster(default, ~9999p, ~9999p, ~9999p) -> started ~9999p",
                        [Cluster, Machine, Ids, Started]);
                Error ->
                    fail("ra:start_cluster(default, ~9999p, ~9999p, ~9999p) -> ~9999p",
                         [Cluster, Machine, Ids, Error])
            end;
        Running ->
            say("cluster ~9999p already has servers running on ~9999p (restarted from their data "
                "dirs): not formed again", [Cluster, [N || {_, N} <- Running]])
    end,
    try smoke(Cluster, Erlang, Python) of
        {State, Leader2} ->
            Side = case lists:member(element(2, Leader2), Python) of true -> "Python"; false -> "Erlang" end,
            say("smoke test passed: ~b members (~b Erlang, ~b Python), leader ~9999p on the ~s side, "
                "state ~9999p", [length(Ids), length(Erlang), length(Python), Leader2, Side, State]),
            halt(0)
    catch
        throw:{smoke_failed, What, Got} ->
            fail("smoke test FAILED: ~s -> ~9999p", [What, Got])
    end.

say(Format, Args) ->
    io:format("form: " ++ Format ++ "~n", Args).

wait_for_nodes(Nodes, Deadline) ->
    case [N || N <- Nodes, net_adm:ping(N) =/= pong] of
        [] -> ok;
        Down ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> fail("nodes do not answer ping after ~b s: ~9999p", [?WAIT_MS div 1000, Down]);
                false -> timer:sleep(500), wait_for_nodes(Nodes, Deadline)
            end
    end.

%% One call and what its answer must satisfy; the answer is printed either way.
check(What, Call, Ok) ->
    Got = (catch Call()),
    case (catch Ok(Got)) of
        true -> io:format("smoke: ~s -> ~9999p~n", [What, Got]), Got;
        _ -> throw({smoke_failed, What, Got})
    end.

%% Like check/3 for answers that settle asynchronously (a follower applying a commit it
%% learns from the leader's next append_entries): poll every 100 ms, up to 30 s.
eventually(What, Call, Ok) ->
    eventually(What, Call, Ok, 300).

eventually(What, Call, Ok, 0) ->
    check(What, Call, Ok);
eventually(What, Call, Ok, N) ->
    Got = (catch Call()),
    case (catch Ok(Got)) of
        true -> io:format("smoke: ~s -> ~9999p~n", [What, Got]), Got;
        _ -> timer:sleep(100), eventually(What, Call, Ok, N - 1)
    end.

smoke(C, [E1 | _] = Erlang, [P1 | _] = Python) ->
    E2 = lists:last(Erlang),
    P2 = lists:last(Python),
    Ids = [{C, N} || N <- Erlang ++ Python],
    Sorted = lists:sort(Ids),
    % The state before this run (0 on a fresh cluster; more when the volumes kept one). After
    % a restart the members may still be electing a leader: poll.
    {ok, S0, _} = eventually("ra:consistent_query(Members, fun(S) -> S end)",
                             fun() -> ra:consistent_query(Ids, fun(S) -> S end, 2000) end,
                             fun({ok, S, _}) -> is_integer(S) end),
    check(fmt("ra:process_command(~9999p, 5) (an Erlang member)", [{C, E1}]),
          fun() -> ra:process_command({C, E1}, 5, 10000) end,
          fun({ok, S, L}) -> S =:= S0 + 5 andalso lists:member(L, Ids) end),
    check(fmt("ra:process_command(~9999p, 7) (a Python member)", [{C, P1}]),
          fun() -> ra:process_command({C, P1}, 7, 10000) end,
          fun({ok, S, L}) -> S =:= S0 + 12 andalso lists:member(L, Ids) end),
    % Issue 5, 3c: the ra API served by the Python node itself, for shells without Ra's code.
    check(fmt("rpc:call(~9999p, ra, process_command, [~9999p, 1])", [P2, {C, P2}]),
          fun() -> rpc:call(P2, ra, process_command, [{C, P2}, 1, 10000], 15000) end,
          fun({ok, S, L}) -> S =:= S0 + 13 andalso lists:member(L, Ids) end),
    {ok, _, Leader} =
        check(fmt("ra:members(~9999p)", [{C, P1}]),
              fun() -> ra:members({C, P1}) end,
              fun({ok, Ms, L}) -> lists:sort(Ms) =:= Sorted andalso lists:member(L, Ids) end),
    check(fmt("rpc:call(~9999p, ra, members, [~9999p])", [P2, {C, E2}]),
          fun() -> rpc:call(P2, ra, members, [{C, E2}], 15000) end,
          fun({ok, Ms, L}) -> lists:sort(Ms) =:= Sorted andalso L =:= Leader end),
    check(fmt("ra:consistent_query(~9999p, fun(S) -> S end)", [{C, P2}]),
          fun() -> ra:consistent_query({C, P2}, fun(S) -> S end) end,
          fun({ok, S, L}) -> S =:= S0 + 13 andalso L =:= Leader end),
    [eventually(fmt("ra:local_query(~9999p, fun(S) -> S end)", [Id]),
                fun() -> ra:local_query(Id, fun(S) -> S end) end,
                fun({ok, {_, S}, _}) -> S =:= S0 + 13 end)
     || Id <- Ids],
    % What `pyra status` prints: every Python node lists its server with all members.
    [check(fmt("rpc:call(~9999p, pyra, overview, [])", [P]),
           fun() -> rpc:call(P, pyra, overview, [], 15000) end,
           fun(Rows) -> lists:any(fun(Row) -> length(element(9, Row)) =:= length(Ids) end, Rows) end)
     || P <- Python],
    {S0 + 13, Leader}.

fmt(Format, Args) ->
    lists:flatten(io_lib:format(Format, Args)).
