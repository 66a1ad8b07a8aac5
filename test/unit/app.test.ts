// startComponent is the library entry: it reports a failure to start by rejecting, with what it
// started stopped again, and never exits the process (only the command line picks exit codes).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { mock, test } from 'node:test';
import { startComponent } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { captureLog, FakeLauncher } from './fake-script.js';

test('an HTTP_LISTEN port already taken: startComponent rejects, stops its scripts, and does not exit', async () => {
  const taken = net.createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const exit = mock.method(process, 'exit', () => {
    throw new Error('process.exit called');
  });
  try {
    const { port } = taken.address() as net.AddressInfo;
    const config = loadConfig({
      XMPP_SERVICE: 'xmpp://127.0.0.1:1',
      XMPP_DOMAIN: 'auth.example.com',
      XMPP_SECRET: 'secret',
      EXTERNAL_AUTH_COMMAND: process.execPath,
      HTTP_LISTEN: `127.0.0.1:${port}`,
    });
    const launcher = new FakeLauncher();
    const { log } = captureLog();
    await assert.rejects(startComponent(config, log, launcher.launch), /EADDRINUSE/);
    assert.equal(exit.mock.callCount(), 0);
    assert.equal(launcher.processes.length, 1, 'its script was started');
    assert.deepEqual(launcher.running, [], 'and closed again');
  } finally {
    exit.mock.restore();
    taken.close();
  }
});
