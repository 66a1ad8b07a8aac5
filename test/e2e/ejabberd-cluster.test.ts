// A two-node ejabberd cluster on this machine (distributed Erlang, joined with join_cluster),
// each node with its own c2s and component listener. The component's routes are cluster-wide:
// a component connected to node A answers logins made on node B, and with one component per
// node, killing either leaves logins on both nodes working. Node A has two component listeners
// (127.0.0.1 and 127.0.0.2): instances on different listeners and nodes all share one JID.
// Once for every ejabberd generation installed (23.01 and 24.12).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';
import { ComponentProcess, REPO_ROOT } from '../../support/component-process.js';
import { sleep } from '../../support/wait.js';
import { EjabberdCluster, type EjabberdNode } from '../support/ejabberd-cluster.js';
import { type EjabberdInstall, ejabberdTestTargets } from '../../support/ejabberd.js';
import { randomSecret } from '../../support/ports.js';
import { readRequestLog } from '../support/request-log.js';
import { saslPlainLogin } from '../../support/xmpp-client.js';

const targets = ejabberdTestTargets();
const SCRIPT = join(REPO_ROOT, 'test/fixtures/e2e-ejabberd/users.mjs');
const DOMAIN = 'auth.localhost';
const SECRET = randomSecret();
const USERS: Record<string, string> = {};
for (let i = 0; i < 12; i++) USERS[`user${i}`] = `pw-${i}-c1a5`;
const NAMES = Object.keys(USERS);

if (targets.missing) describe(`two-node ejabberd cluster: ${targets.missing}`, { skip: targets.missing }, () => {});
for (const install of targets.installs) clustered(install);

function clustered(install: EjabberdInstall): void {
  // Each title names the ejabberd it ran against.
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`two-node ${install.label} cluster`, { timeout: 300_000 }, () => {
    let cluster: EjabberdCluster;
    let nodeA: EjabberdNode;
    let nodeB: EjabberdNode;
    let usersFile: string;
    let requestLog: string;
    const components: ComponentProcess[] = [];

    const login = (node: EjabberdNode, username: string, password: string) =>
      saslPlainLogin({ host: node.host, port: node.c2sPort, domain: cluster.vhost, username, password, timeoutMs: 15_000 });
    /** Every user logs in on both nodes, half of them at once, half one after the other. */
    const everyoneEverywhere = async () => {
      const results = [];
      for (const node of [nodeA, nodeB]) {
        results.push(...(await Promise.all(NAMES.slice(0, 6).map((name) => login(node, name, USERS[name]!)))));
        for (const name of NAMES.slice(6)) results.push(await login(node, name, USERS[name]!));
      }
      return results;
    };
    const startComponentOn = async (node: EjabberdNode, label: string, o: { listener?: number; requestLog?: string } = {}) => {
      const component = await ComponentProcess.start({
        label,
        service: node.serviceUris[o.listener ?? 0]!,
        domain: DOMAIN,
        secret: SECRET,
        protocol: 'ejabberd',
        command: `${process.execPath} ${SCRIPT} ${usersFile}`,
        env: { EXTERNAL_AUTH_TIMEOUT: '3', EXTERNAL_AUTH_PROCESSES: '2', E2E_REQUEST_LOG: o.requestLog ?? requestLog },
      });
      components.push(component);
      return component;
    };
    /** Waits until both nodes route the component domain to exactly these nodes' connections. */
    const waitRoutes = async (expected: EjabberdNode[]) => {
      const want = expected.map((node) => node.name).sort();
      const deadline = Date.now() + 60_000;
      for (;;) {
        const seen = [nodeA, nodeB].map((node) => cluster.routeNodes(node.name, DOMAIN));
        if (seen.every((routes) => JSON.stringify(routes) === JSON.stringify(want))) return;
        assert.ok(Date.now() < deadline, `routes to ${DOMAIN}: ${JSON.stringify(seen)}, want ${JSON.stringify(want)} on both nodes`);
        await sleep(200);
      }
    };
    /** Script process ids that answered since `mark`. */
    const answeredBy = (mark: number) => new Set(readRequestLog(requestLog, mark).map((r) => r.pid));
    const mark = () => readRequestLog(requestLog).length;

    before(async () => {
      // The shim waits longer than the component's own timeout, so the component's answer wins.
      cluster = await EjabberdCluster.start({ install, component: { domain: DOMAIN, secret: SECRET }, shimTimeout: '5000 ms', componentListeners: 2 });
      [nodeA, nodeB] = cluster.nodes as [EjabberdNode, EjabberdNode];
      usersFile = join(cluster.dir, 'users.json');
      requestLog = join(cluster.dir, 'requests.log');
      writeFileSync(usersFile, JSON.stringify(USERS));
    });

    after(async () => {
      await Promise.all(components.map((component) => component.stop()));
      if (cluster) {
        const logs = [...cluster.nodes.map((node) => node.log()), ...components.map((c) => c.logText())].join('\n');
        await cluster.stop();
        for (const password of Object.values(USERS)) assert.ok(!logs.includes(password), 'a password appears in a log');
        assert.doesNotMatch(logs, /CRASH REPORT|ejabberd_auth_external_component[^\n]*(?:badarg|undef|function_clause)/);
      }
    });

    test('a component connected to node A answers logins made on node B', async () => {
      await startComponentOn(nodeA, 'on A');
      await waitRoutes([nodeA]);
      const before = mark();
      assert.equal((await login(nodeB, 'user0', USERS.user0!)).ok, true, 'right password on B');
      assert.equal((await login(nodeB, 'user0', 'wrong')).condition, 'not-authorized', 'wrong password on B');
      assert.deepEqual(
        readRequestLog(requestLog, before).map((r) => `${r.op} ${r.user} ${r.answer}`),
        ['auth user0 1', 'auth user0 0'],
        'B asked the component on A',
      );
      assert.ok(
        (await everyoneEverywhere()).every((r) => r.ok),
        'every login on both nodes',
      );
    });

    test('one component per node: both serve; killing either leaves every login on both nodes working', async () => {
      const [onA] = components;
      const onB = await startComponentOn(nodeB, 'on B');
      await waitRoutes([nodeA, nodeB]);
      let since = mark();
      assert.ok((await everyoneEverywhere()).every((r) => r.ok));
      const bothServed = answeredBy(since);
      // ejabberd prefers a route on the local node: each node's logins go to its own component.
      since = mark();
      assert.equal((await login(nodeA, 'user1', USERS.user1!)).ok, true);
      const servedOnA = answeredBy(since);
      since = mark();
      assert.equal((await login(nodeB, 'user1', USERS.user1!)).ok, true);
      const servedOnB = answeredBy(since);
      assert.ok(servedOnA.size === 1 && servedOnB.size === 1 && ![...servedOnA].some((pid) => servedOnB.has(pid)), 'each node asked its own component');

      await onA!.kill();
      await waitRoutes([nodeB]);
      since = mark();
      assert.ok(
        (await everyoneEverywhere()).every((r) => r.ok),
        'every login with only the component on B',
      );
      const afterKillA = answeredBy(since);
      assert.ok([...afterKillA].every((pid) => bothServed.has(pid)) && afterKillA.size > 0);

      const onA2 = await startComponentOn(nodeA, 'on A again');
      await waitRoutes([nodeA, nodeB]);
      await onB.kill();
      await waitRoutes([nodeA]);
      since = mark();
      assert.ok(
        (await everyoneEverywhere()).every((r) => r.ok),
        'every login with only the component on A',
      );
      assert.ok(
        [...answeredBy(since)].every((pid) => !afterKillA.has(pid)),
        'served by the new component on A alone',
      );
      assert.ok(onA2.running);
    });

    test('three instances on different listeners (127.0.0.1 and 127.0.0.2 on A, B): all serve; all but one killed, every login works', async () => {
      const onA1stListener = components.at(-1)!; // started by the test before
      const logX = join(cluster.dir, 'requests-x.log');
      const logY = join(cluster.dir, 'requests-y.log');
      const onA2ndListener = await startComponentOn(nodeA, 'on A, second listener', { listener: 1, requestLog: logX });
      const onB = await startComponentOn(nodeB, 'on B again', { requestLog: logY });
      await waitRoutes([nodeA, nodeA, nodeB]);
      const marks = () => [mark(), readRequestLog(logX).length, readRequestLog(logY).length];
      const since = marks();
      const results = [];
      for (let round = 0; round < 3; round++) results.push(...(await Promise.all(NAMES.map((name) => login(nodeA, name, USERS[name]!)))));
      results.push(...(await everyoneEverywhere()));
      assert.ok(
        results.every((r) => r.ok),
        'every login with three instances',
      );
      const served = [readRequestLog(requestLog, since[0]).length, readRequestLog(logX, since[1]).length, readRequestLog(logY, since[2]).length];
      assert.ok(
        served.every((n) => n > 0),
        `each instance answered some requests: ${served}`,
      );

      await Promise.all([onA1stListener.kill(), onB.kill()]);
      await waitRoutes([nodeA]);
      const before = marks();
      assert.ok(
        (await everyoneEverywhere()).every((r) => r.ok),
        'every login with one instance left',
      );
      assert.equal(readRequestLog(requestLog, before[0]).length + readRequestLog(logY, before[2]).length, 0, 'only the survivor answered');
      assert.ok(readRequestLog(logX, before[1]).length >= 2 * NAMES.length);
      assert.ok(onA2ndListener.running);
    });
  });
}
