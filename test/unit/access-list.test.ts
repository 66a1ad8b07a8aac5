import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type BareJid, parseBareJid } from '../../src/core/bare-jid.js';
import { createAccessCheck } from '../../src/xmpp/access-list.js';

function allowList(...entries: string[]): BareJid[] {
  return entries.map((entry) => {
    const jid = parseBareJid(entry);
    assert.ok(jid, `${entry} parses`);
    return jid;
  });
}

/** Whether a requester may query, by a fresh check (no verdict remembered from an earlier call). */
function isAllowed(requester: string, allow: readonly BareJid[]): boolean {
  return createAccessCheck(allow)(requester) !== null;
}

describe('parseBareJid', () => {
  test('parses a domain', () => assert.deepEqual(parseBareJid('example.com'), { local: null, domain: 'example.com' }));
  test('parses user@domain', () => assert.deepEqual(parseBareJid('user@example.com'), { local: 'user', domain: 'example.com' }));
  test('lower-cases the domain but keeps the local part as it is', () => {
    assert.deepEqual(parseBareJid('User@EXAMPLE.Com'), { local: 'User', domain: 'example.com' });
  });

  const rejected = [
    '',
    'example.com/res',
    'user@example.com/res',
    'example.com/',
    '@example.com',
    'user@',
    '@',
    'a@b@example.com',
    'exa mple.com',
    ' example.com',
    'example.com\n',
    'user@exam\tple.com',
    'exa\u0000mple.com',
    'exa\u007fmple.com',
  ];
  for (const text of rejected) {
    test(`rejects ${JSON.stringify(text)}`, () => assert.equal(parseBareJid(text), null));
  }
});

describe("the requester's bare JID", () => {
  test('drops the resource, and the check gives its lower-cased domain', () => {
    assert.equal(createAccessCheck(allowList('user@example.com'))('user@Example.com/res'), 'example.com');
    assert.equal(createAccessCheck(allowList('example.com'))('example.com/x'), 'example.com');
  });
  test('a resource may contain "@" and "/"', () => {
    assert.equal(createAccessCheck(allowList('example.com'))('example.com/alice@evil.com/x'), 'example.com');
  });
  test('a requester whose bare part is no JID is refused', () => {
    assert.equal(createAccessCheck(allowList('example.com'))('/res'), null);
    assert.equal(createAccessCheck(allowList('example.com'))('@example.com/res'), null);
  });
});

describe('who may query', () => {
  const domainOnly = allowList('example.com');

  const domainMatches = ['example.com', 'example.com/x', 'EXAMPLE.com', 'Example.COM/Resource', 'example.com/alice@other'];
  for (const requester of domainMatches) {
    test(`an example.com entry allows ${requester}`, () => assert.equal(isAllowed(requester, domainOnly), true));
  }

  const domainMismatches = [
    'alice@example.com',
    'alice@example.com/x',
    'sub.example.com',
    'example.com.evil',
    'evil-example.com',
    'example.co',
    'example.org',
    'example.com@example.com',
    '',
    '/example.com',
  ];
  for (const requester of domainMismatches) {
    test(`an example.com entry refuses ${JSON.stringify(requester)}`, () => assert.equal(isAllowed(requester, domainOnly), false));
  }

  const userEntry = allowList('user@example.com');

  test('a user@example.com entry allows that user with any resource and domain case', () => {
    assert.equal(isAllowed('user@example.com', userEntry), true);
    assert.equal(isAllowed('user@EXAMPLE.COM/res', userEntry), true);
  });

  test('a user@example.com entry compares the local part exactly (case-sensitive)', () => {
    assert.equal(isAllowed('User@example.com', userEntry), false);
    assert.equal(isAllowed('USER@example.com/res', userEntry), false);
  });

  test('an entry written with an upper-case local part matches only that spelling', () => {
    const entry = allowList('Admin@Example.org');
    assert.equal(isAllowed('Admin@example.ORG/x', entry), true);
    assert.equal(isAllowed('admin@example.org', entry), false);
  });

  test('a user@example.com entry refuses the bare domain and other users', () => {
    assert.equal(isAllowed('example.com', userEntry), false);
    assert.equal(isAllowed('other@example.com', userEntry), false);
    assert.equal(isAllowed('user@sub.example.com', userEntry), false);
    assert.equal(isAllowed('xuser@example.com', userEntry), false);
  });

  test('an empty allow list refuses everyone', () => {
    assert.equal(isAllowed('example.com', []), false);
  });

  test('any entry of several may match', () => {
    const list = allowList('example.com', 'admin@example.org', 'other.net');
    assert.equal(isAllowed('other.net/r', list), true);
    assert.equal(isAllowed('admin@example.org', list), true);
    assert.equal(isAllowed('example.org', list), false);
  });

  test('property: a domain entry allows exactly the requesters whose bare JID is that domain', () => {
    const label = fc.stringMatching(/^[a-z0-9-]{1,8}$/);
    const domain = fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join('.'));
    const resource = fc.option(fc.string({ maxLength: 10 }), { nil: undefined });
    const local = fc.option(fc.stringMatching(/^[a-zA-Z0-9._-]{1,8}$/), { nil: undefined });
    fc.assert(
      fc.property(domain, domain, local, resource, fc.boolean(), (entry, requesterDomain, user, res, upper) => {
        const shownDomain = upper ? requesterDomain.toUpperCase() : requesterDomain;
        const requester = `${user === undefined ? '' : `${user}@`}${shownDomain}${res === undefined ? '' : `/${res}`}`;
        const expected = user === undefined && requesterDomain === entry;
        assert.equal(isAllowed(requester, allowList(entry)), expected, requester);
      }),
    );
  });
});

describe('createAccessCheck', () => {
  const list: BareJid[] = [
    { local: null, domain: 'example.com' },
    { local: 'admin', domain: 'example.org' },
  ];

  test('gives the lower-cased domain of an allowed requester, null for a refused one, the same on every call', () => {
    const check = createAccessCheck(list);
    for (let i = 0; i < 3; i++) {
      assert.equal(check('EXAMPLE.com/x'), 'example.com');
      assert.equal(check('admin@Example.ORG'), 'example.org');
      assert.equal(check('alice@example.com'), null);
      assert.equal(check('evil.com'), null);
    }
  });

  test('gives the same verdicts even after its cache is cleared many times', () => {
    const check = createAccessCheck(list, 4);
    fc.assert(
      fc.property(fc.constantFrom('example.com', 'a@example.com', 'example.com/r', 'admin@example.org', 'x.org', 'ADMIN@example.org'), (requester) => {
        assert.equal(check(requester) !== null, isAllowed(requester, list));
      }),
    );
  });
});
