import type { ScriptCodec } from './codec.js';
import { ejabberdCodec } from './ejabberd.js';
import { genericCodec } from './generic.js';

export type ScriptProtocol = ScriptCodec['name'];
export const SCRIPT_PROTOCOLS: readonly ScriptProtocol[] = ['generic', 'ejabberd'];

export function codecFor(protocol: ScriptProtocol): ScriptCodec {
  return protocol === 'ejabberd' ? ejabberdCodec : genericCodec;
}
