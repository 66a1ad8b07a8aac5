// The test client's SCRAM-SHA-256 (support/xmpp-client.ts), which the benchmark's SCRAM row and
// SCRAM tests rely on, against Prosody's own SCRAM: a right password logs in (and the server's
// signature checks out), a wrong one is refused. Prosody keeps the accounts itself here
// (internal_plain), so only the client is under test.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { prosodyTestTargets, ProsodyServer } from '../../support/prosody.js';
import { saslLogin } from '../../support/xmpp-client.js';

const targets = prosodyTestTargets();
if (targets.missing) describe(`SCRAM-SHA-256 test client: ${targets.missing}`, { skip: targets.missing }, () => {});

for (const install of targets.installs) {
  describe(`SCRAM-SHA-256 test client against ${install.label}`, { timeout: 60_000 }, () => {
    let server: ProsodyServer;
    const target = () => ({ host: server.host, port: server.c2sPort, domain: server.vhost });

    before(async () => {
      server = await ProsodyServer.start({
        install,
        authentication: 'internal_plain',
        accounts: { alice: 'pencil, 1=2' },
        logLevel: 'warn',
        label: 'scram client test',
      });
    });
    after(() => server?.stop());

    test('the right password logs in and the server proves it holds the credentials', async () => {
      const result = await saslLogin({ ...target(), username: 'alice', password: 'pencil, 1=2', mechanism: 'SCRAM-SHA-256' });
      assert.deepEqual({ ok: result.ok, condition: result.condition }, { ok: true, condition: undefined });
    });

    test('a wrong password is refused', async () => {
      const result = await saslLogin({ ...target(), username: 'alice', password: 'pencil, 1=3', mechanism: 'SCRAM-SHA-256' });
      assert.equal(result.condition, 'not-authorized');
    });
  });
}
