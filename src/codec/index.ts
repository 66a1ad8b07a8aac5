import type { ScriptCodec } from './codec.js';
import { ejabberdCodec } from './ejabberd.js';
import { genericCodec } from './generic.js';

export type ScriptProtocol = 'generic' | 'ejabberd' | 'tagged';

export function codecFor(protocol: ScriptProtocol): ScriptCodec {
  if (protocol === 'tagged') throw new Error('the tagged protocol is not implemented yet');
  return protocol === 'ejabberd' ? ejabberdCodec : genericCodec;
}
