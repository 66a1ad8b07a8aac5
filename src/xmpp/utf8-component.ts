import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { Socket } from 'node:net';
import { Component } from '@xmpp/component-core';
import xml from '@xmpp/xml';

/**
 * xmpp.js 0.13 decodes every TCP read on its own, so a UTF-8 character split across two reads
 * turns into two replacement characters: a password would silently change. This keeps one
 * streaming decoder per socket. It also contains parser exceptions (ltx throws on an illegal
 * entity), which would otherwise escape from the socket's data handler and crash the process,
 * and hashes the handshake secret as UTF-8 (xmpp.js hashes it as latin1).
 */
export class Utf8SafeComponent extends Component {
  private decoder = new StringDecoder('utf8');

  override _attachSocket(socket: Socket): void {
    this.decoder = new StringDecoder('utf8');
    super._attachSocket(socket);
  }

  override _onData(data: Buffer): void {
    const text = this.decoder.write(data);
    if (text === '' || this.parser === null) return;
    try {
      this.parser.write(text);
    } catch (error) {
      this.emit('error', error);
      void this._streamError('bad-format');
    }
  }

  // XEP-0114 §3: SHA-1 of the stream id concatenated with the secret, hex-encoded.
  override async authenticate(id: string, secret: string): Promise<void> {
    const digest = createHash('sha1').update(id + secret, 'utf8').digest('hex');
    const reply = await this.sendReceive(xml('handshake', {}, digest));
    if (reply.name !== 'handshake') throw new Error(`unexpected <${reply.name}/> in reply to the handshake`);
    this._jid(this.options.domain);
    this._status('online', this.jid);
  }
}
