// `npm run demo -- --prosody 0.12|13`: which Prosody the demos run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pickProsody } from '../../demo/demo-run.js';
import type { ProsodyInstall } from '../../support/prosody.js';

const install = (version: string): ProsodyInstall => ({ executable: `/x/${version}/prosody`, version, label: `Prosody ${version}` });
const BOTH = [install('0.12.3'), install('13.0.1')];

test('without --prosody, the newest found, and the demo says so', () => {
  const picked = pickProsody([], BOTH);
  assert.equal(picked?.install.version, '13.0.1');
  assert.match(picked!.why, /newest found \(0\.12\.3, 13\.0\.1\)/);
  assert.equal(pickProsody([], [install('0.12.3')])?.why, 'the only one found');
  assert.equal(pickProsody([], []), undefined);
});

test('--prosody picks a generation by its version or a prefix of it', () => {
  assert.equal(pickProsody(['--prosody', '0.12'], BOTH)?.install.version, '0.12.3');
  assert.equal(pickProsody(['--prosody=13'], BOTH)?.install.version, '13.0.1');
  assert.equal(pickProsody(['--prosody', '13.0.1'], BOTH)?.install.version, '13.0.1');
  assert.match(pickProsody(['--prosody', '0.12'], BOTH)!.why, /--prosody 0\.12/);
});

test('a generation that is not installed, or a wrong argument, is an error naming what is there', () => {
  assert.throws(() => pickProsody(['--prosody', '0.11'], BOTH), /no such Prosody here \(found: 0\.12\.3, 13\.0\.1/);
  assert.throws(() => pickProsody(['--prosody', '1'], BOTH), /no such Prosody/, '1 is no prefix of 13');
  assert.throws(() => pickProsody(['--prosody', 'new'], BOTH), /give a version such as 0\.12 or 13/);
  assert.throws(() => pickProsody(['--ejabberd'], BOTH), /Unknown option '--ejabberd'/);
});
