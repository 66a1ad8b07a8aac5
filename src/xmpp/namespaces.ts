export const NS_EXTAUTH = 'urn:x-extauth:0';
export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_PING = 'urn:xmpp:ping';
export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
export const NS_COMPONENT = 'jabber:component:accept';
export const NS_STREAMS = 'http://etherx.jabber.org/streams';
export const NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams';
