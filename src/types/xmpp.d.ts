// Just enough typing for the parts of xmpp.js 0.13 (CommonJS, untyped) that we use.
declare module '@xmpp/xml' {
  import { EventEmitter } from 'node:events';

  export class Element {
    constructor(name: string, attrs?: Record<string, string>);
    name: string;
    attrs: Record<string, string | undefined>;
    children: Array<Element | string>;
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getNS(): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getText(): string;
    getChildText(name: string, xmlns?: string): string | null;
    toString(): string;
  }

  export class Parser extends EventEmitter {
    write(data: string): void;
    end(data?: string): void;
  }

  export function escapeXML(s: string): string;
  export function escapeXMLText(s: string): string;

  interface XmlFactory {
    (name: string, attrs?: Record<string, string | undefined> | null, ...children: Array<Element | string>): Element;
    Element: typeof Element;
    Parser: typeof Parser;
    escapeXML: typeof escapeXML;
    escapeXMLText: typeof escapeXMLText;
  }
  const xml: XmlFactory;
  export default xml;
}

declare module '@xmpp/component-core' {
  import { EventEmitter } from 'node:events';
  import type { Socket } from 'node:net';
  import type { Element, Parser } from '@xmpp/xml';

  export class Component extends EventEmitter {
    constructor(options: { service: string; domain: string });
    options: { service: string; domain: string };
    status: string;
    socket: Socket | null;
    parser: Parser | null;
    timeout: number;
    connect(service: string): Promise<void>;
    open(options: { domain: string; lang?: string; timeout?: number }): Promise<Element>;
    authenticate(id: string, password: string): Promise<void>;
    stop(): Promise<Element | undefined>;
    disconnect(timeout?: number): Promise<void>;
    send(element: Element): Promise<void>;
    write(data: string): Promise<void>;
    jid: unknown;
    sendReceive(element: Element, timeout?: number): Promise<Element>;
    _jid(id: string): unknown;
    _status(status: string, ...args: unknown[]): void;
    _onData(data: Buffer): void;
    _attachSocket(socket: Socket): void;
    _streamError(condition: string): Promise<unknown>;
    _reset(): void;
    _detachParser(): void;
  }
}
