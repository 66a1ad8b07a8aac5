import type { ScriptCodec, ScriptProtocol } from './codec.js';
import { ejabberdCodec } from './ejabberd.js';
import { genericCodec } from './generic.js';
import { taggedCodec } from './tagged.js';

export function codecFor(protocol: ScriptProtocol): ScriptCodec {
  if (protocol === 'tagged') return taggedCodec;
  return protocol === 'ejabberd' ? ejabberdCodec : genericCodec;
}
