// Just enough typing for the parts of @xmpp/xml 0.13 (ltx; CommonJS, untyped) that we use.
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
    append(...nodes: Array<Element | string>): void;
    t(text: string): Element;
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
