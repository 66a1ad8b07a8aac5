// A throwaway ejabberd cluster on this machine for end-to-end tests: N distributed Erlang nodes
// (`-sname`, one random cookie, each with its own Mnesia directory, config, c2s and component
// listener), joined with ejabberd's own `join_cluster` called over Erlang RPC from a hidden
// control node. Works with every ejabberd generation the e2e tests cover (see ejabberdInstalls):
// 23.01 joins before `join_cluster` returns, 24.12 only starts joining then. Stopped with SIGTERM.
// KEEP_E2E_TMP=1 keeps the temp dir.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../../support/wait.js';
import { buildShim, findEjabberd, NODE_HOST, spawnEjabberdNode, type EjabberdInstall } from '../../support/ejabberd.js';
import { canConnect, freePorts, LOOPBACK } from '../../support/ports.js';
import { ServerChild } from '../../support/server-child.js';

const START_TIMEOUT_MS = 40_000;
/** How long a node may take to join: stop ejabberd, copy the tables, start again. */
const JOIN_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 15_000;

export interface ClusterOptions {
  /** How many nodes. Default 2. */
  nodes?: number;
  vhost?: string;
  /** The component domain every node's listener accepts, and its password. */
  component: { domain: string; secret: string };
  /** mod_auth_external_component timeout, e.g. `"4000 ms"`. */
  shimTimeout: string;
  /** Component listeners per node, the k-th on 127.0.0.k (all of loopback is local). Default 1. */
  componentListeners?: number;
  /** Which ejabberd every node runs. Default: the newest installed. */
  install?: EjabberdInstall;
}

export class EjabberdNode {
  private readonly process: ServerChild;

  constructor(
    child: ChildProcess,
    /** The Erlang node name, e.g. `extauth_a_1f3c@localhost`. */
    readonly name: string,
    readonly dir: string,
    readonly c2sPort: number,
    /** XMPP_SERVICE of each component listener of this node. */
    readonly serviceUris: string[],
  ) {
    this.process = new ServerChild(child);
  }

  get host(): string {
    return LOOPBACK;
  }

  get serviceUri(): string {
    return this.serviceUris[0]!;
  }

  get running(): boolean {
    return this.process.running;
  }

  log(): string {
    const file = join(this.dir, 'log/ejabberd.log');
    return `${existsSync(file) ? readFileSync(file, 'utf8') : ''}\n--- console ---\n${this.process.output}`;
  }

  async waitListening(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`${this.name} exited (code ${this.process.exitCode}) while starting\n${tail(this.log(), 40)}`);
      if (
        (await canConnect(this.c2sPort)) &&
        (await Promise.all(this.serviceUris.map((uri) => canConnect(Number(new URL(uri).port), new URL(uri).hostname)))).every(Boolean)
      )
        return;
      if (Date.now() > deadline) throw new Error(`${this.name} is not listening after ${timeoutMs} ms\n${tail(this.log(), 40)}`);
      await sleep(100);
    }
  }

  stop(): Promise<void> {
    return this.process.stop(STOP_GRACE_MS);
  }
}

export class EjabberdCluster {
  private constructor(
    /** The ejabberd every node runs. */
    readonly install: EjabberdInstall,
    readonly dir: string,
    readonly cookie: string,
    readonly vhost: string,
    readonly nodes: EjabberdNode[],
  ) {}

  static async start(options: ClusterOptions): Promise<EjabberdCluster> {
    const found = options.install ?? findEjabberd();
    if ('missing' in found) throw new Error(`ejabberd not available: ${found.missing}`);
    const install = found;
    const dir = mkdtempSync(join(tmpdir(), 'extauth-ejabberd-cluster-'));
    const ebin = join(dir, 'ebin');
    buildShim(install, ebin);
    const cookie = `c${randomBytes(12).toString('hex')}`;
    const vhost = options.vhost ?? 'localhost';
    const tag = randomBytes(3).toString('hex');
    const cluster = new EjabberdCluster(install, dir, cookie, vhost, []);
    try {
      const count = options.nodes ?? 2;
      const perNode = 1 + (options.componentListeners ?? 1);
      // Every port of the cluster in one call: held open together, so no two are the same (a
      // call per node could hand one node a port another node has just been given).
      const ports = await freePorts(count * perNode);
      for (let i = 0; i < count; i++) {
        const [c2sPort, ...servicePorts] = ports.slice(i * perNode, (i + 1) * perNode);
        const listeners = servicePorts.map((port, k) => ({ ip: `127.0.0.${k + 1}`, port: port! }));
        const name = `extauth_${String.fromCharCode(97 + i)}_${tag}@${NODE_HOST}`;
        const nodeDir = join(dir, `node${i}`);
        mkdirSync(nodeDir);
        writeFileSync(join(nodeDir, 'ejabberd.yml'), renderNodeConfig({ vhost, c2sPort: c2sPort!, listeners, ...options }));
        const child = spawnEjabberdNode(install, nodeDir, { node: { name, cookie }, codePaths: [ebin] });
        cluster.nodes.push(
          new EjabberdNode(
            child,
            name,
            nodeDir,
            c2sPort!,
            listeners.map(({ ip, port }) => `xmpp://${ip}:${port}`),
          ),
        );
      }
      await Promise.all(cluster.nodes.map((node) => node.waitListening()));
      // Every other node joins the first: ejabberd stops there, copies the first node's
      // Mnesia tables and starts again (listeners included).
      const [first, ...others] = cluster.nodes;
      for (const node of others) {
        const answer = cluster.rpc(node.name, 'ejabberd_admin', 'join_cluster', `[<<"${first!.name}">>]`).trim();
        // 23.01 answers `ok` once joined; 24.12 answers {ok, "Trying to join that cluster, ..."}
        // and joins a second later in the background.
        if (answer !== 'ok' && !answer.startsWith('{ok,')) throw new Error(`join_cluster on ${node.name} answered ${answer}`);
        await cluster.waitJoined(first!, node);
        await node.waitListening();
      }
      return cluster;
    } catch (error) {
      await cluster.stop({ keepDir: true });
      throw new Error(`${(error as Error).message}\n(config and logs in ${dir})`);
    }
  }

  /**
   * Calls Module:Function(Args) on a node through a hidden control node; returns the result as
   * Erlang prints it (`~p`). `args` is an Erlang list expression.
   */
  rpc(node: string, module: string, fn: string, args: string): string {
    return this.evaluate(`R = rpc:call('${node}', ${module}, ${fn}, ${args}, 60000), io:format("~p~n", [R]), halt().`);
  }

  /** Evaluates an Erlang expression (ending in halt()) on a new hidden control node; returns what it printed. */
  private evaluate(expression: string): string {
    const control = `extauth_ctl_${randomBytes(3).toString('hex')}@${NODE_HOST}`;
    return execFileSync(this.install.erl, ['-sname', control, '-setcookie', this.cookie, '-hidden', '-noinput', '-eval', expression], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.dir },
      timeout: 90_000,
    });
  }

  /**
   * Waits until `node` has joined `first`: each lists the other among its running database
   * nodes and ejabberd runs again on `node`. While it joins, ejabberd is stopped there and both
   * nodes list each other only once it has been; so both at once mean the join has finished.
   */
  private async waitJoined(first: EjabberdNode, node: EjabberdNode): Promise<void> {
    const check = `[
      lists:member('${node.name}', rpc:call('${first.name}', ejabberd_cluster, get_nodes, [], 10000)),
      lists:member('${first.name}', rpc:call('${node.name}', ejabberd_cluster, get_nodes, [], 10000)),
      lists:keymember(ejabberd, 1, rpc:call('${node.name}', application, which_applications, [], 10000))
    ]`;
    const deadline = Date.now() + JOIN_TIMEOUT_MS;
    for (;;) {
      if (!node.running) throw new Error(`${node.name} exited while joining the cluster\n${tail(node.log(), 40)}`);
      // A node in the middle of a restart answers {badrpc, ...}: lists:member then fails, and the
      // whole expression prints an error instead of the three booleans.
      const state = this.evaluate(`S = try ${check} catch _:_ -> joining end, io:format("~p~n", [S]), halt().`).trim();
      if (state === '[true,true,true]') return;
      if (Date.now() > deadline) throw new Error(`${node.name} has not joined ${first.name} after ${JOIN_TIMEOUT_MS} ms (${state})\n${tail(node.log(), 40)}`);
      await sleep(500);
    }
  }

  /** The component routes each node knows for a domain, as `[Node of each route's process]`. */
  routeNodes(viaNode: string, domain: string): string[] {
    const text = this.rpc(
      viaNode,
      'erlang',
      'apply',
      `[fun() -> M = ejabberd_router:get_backend(), case M:find_routes(<<"${domain}">>) of {ok, Rs} -> [node(element(4, R)) || R <- Rs]; _ -> [] end end, []]`,
    );
    return [...text.matchAll(/'?([\w.-]+@[\w.-]+)'?/g)].map((m) => m[1]!).sort();
  }

  async stop(options: { keepDir?: boolean } = {}): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    if (!options.keepDir && !process.env.KEEP_E2E_TMP) rmSync(this.dir, { recursive: true, force: true });
  }
}

function renderNodeConfig(o: ClusterOptions & { vhost: string; c2sPort: number; listeners: Array<{ ip: string; port: number }> }): string {
  const y = (value: string) => JSON.stringify(value);
  return `${[
    'hosts:',
    `  - ${y(o.vhost)}`,
    'loglevel: info',
    'hide_sensitive_log_data: true',
    'listen:',
    '  -',
    `    port: ${o.c2sPort}`,
    `    ip: "${LOOPBACK}"`,
    '    module: ejabberd_c2s',
    '    starttls: false',
    '    backlog: 1024',
    ...o.listeners.flatMap(({ ip, port }) => [
      '  -',
      `    port: ${port}`,
      `    ip: "${ip}"`,
      '    module: ejabberd_service',
      '    check_from: true',
      '    hosts:',
      `      ${y(o.component.domain)}:`,
      `        password: ${y(o.component.secret)}`,
    ]),
    'auth_method: [external_component]',
    'auth_use_cache: false',
    's2s_access: none',
    'acl:',
    '  local:',
    '    user_regexp: ""',
    'access_rules:',
    '  local:',
    '    allow: local',
    '  c2s:',
    '    allow: all',
    'modules:',
    '  mod_auth_external_component:',
    `    component: ${y(o.component.domain)}`,
    `    timeout: ${y(o.shimTimeout)}`,
  ].join('\n')}\n`;
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}
