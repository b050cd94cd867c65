import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { decodeManifest, encodeManifest } from '../../src/model/codec.ts';
import { ManifestError } from '../../src/model/errors.ts';
import {
  loadManifestFile,
  loadPlacementFile,
  manifestToJson,
  parseManifest,
  parsePlacement,
  type ManifestJson,
} from '../../src/model/schema.ts';
import { MAX_DRAINED_BYTES, MAX_ENDPOINTS, validateManifest } from '../../src/model/validate.ts';
import { PEER, SELF, copy, fullManifest, fullPlacement } from './fixtures.ts';

type Json = Record<string, any>;

/** A manifest with one connect endpoint on fd 5, to break in one test. */
function small(): Json {
  return {
    process: SELF,
    executable: 'a.out',
    endpoints: [
      {
        id: { process: SELF, conn: 1 },
        peer: { process: PEER, conn: 1 },
        role: 'connect',
        family: 'inet',
        fds: [5],
      },
    ],
  };
}

function endpoint(conn: number, fds: number[], extra: Json = {}): Json {
  return {
    id: { process: SELF, conn },
    peer: { process: PEER, conn },
    role: 'connect',
    family: 'inet',
    fds,
    ...extra,
  };
}

function manifestError(run: () => unknown): ManifestError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestError);
    return err as ManifestError;
  }
  throw new Error('expected a ManifestError');
}

/** The issue at `path` of a manifest that fails; asserts that the message names the path. */
function issueAt(json: unknown, path: string): { code: string; message: string } {
  const err = manifestError(() => parseManifest(json));
  expect(err.code).toBe('EMANIFEST');
  const issue = err.issues.find((i) => i.path === path);
  if (issue === undefined) throw new Error(`no issue at '${path}' in:\n${err.message}`);
  expect(err.message).toContain(`\n  ${path}: ${issue.message}`);
  return { code: issue.code, message: issue.message };
}

function placementIssueAt(json: unknown, path: string): { code: string; message: string } {
  const err = manifestError(() => parsePlacement(json));
  expect(err.code).toBe('EPLACEMENT');
  const issue = err.issues.find((i) => i.path === path);
  if (issue === undefined) throw new Error(`no issue at '${path}' in:\n${err.message}`);
  expect(err.message).toContain(`\n  ${path}: ${issue.message}`);
  return issue;
}

describe('reading a manifest', () => {
  test('reads the defaults of optional fields', () => {
    const m = parseManifest(small());

    expect(m.pid).toBe(0);
    expect(m.endpoints[0]!.type).toBe('stream');
    expect(m.endpoints[0]!.protocol).toBe(0);
    expect(m.endpoints[0]!.options).toEqual([]);
    expect(m.endpoints[0]!.drained).toEqual(new Uint8Array(0));
  });

  test('accepts 64-bit ids as decimal strings or safe integers', () => {
    const json = small();
    json.process = { ...SELF, hostId: 12345, birthTime: '9007199254740993' };
    json.endpoints[0].id.process = json.process;
    json.nodeId = Number.MAX_SAFE_INTEGER;

    const m = parseManifest(json);
    expect(m.process.hostId).toBe(12345n);
    expect(m.process.birthTime).toBe(9007199254740993n);
    expect(m.nodeId).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    expect(manifestToJson(m).process.hostId).toBe('12345');
  });

  test('rejects 64-bit ids that are unsafe, negative, too large or not decimal', () => {
    const cases: [unknown, string][] = [
      [
        2 ** 60,
        '1152921504606847000 is above 2^53-1, where JSON numbers lose digits: write it as a decimal string',
      ],
      [-1, 'expected a decimal string or a safe non-negative integer, got -1'],
      ['18446744073709551616', "'18446744073709551616' is above 2^64-1"],
      ['0x10', "expected a decimal string or a safe non-negative integer, got '0x10'"],
    ];
    for (const [nodeId, message] of cases) {
      expect(issueAt({ ...small(), nodeId }, 'nodeId').message).toBe(message);
    }
  });

  test('reads options given by C name into the value bytes getsockopt returns', () => {
    const json = small();
    json.endpoints[0].options = [
      { label: 'SO_SNDBUF', int: 425984 },
      { label: 'SO_LINGER', linger: { onoff: true, seconds: 5 } },
      { label: 'TCP_CONGESTION', string: 'cubic' },
      { label: 'SO_RCVTIMEO', timevalMicros: 2_500_000 },
    ];

    const [sndbuf, linger, congestion, timeo] = parseManifest(json).endpoints[0]!.options;
    expect(sndbuf).toEqual({
      level: 1,
      name: 7,
      label: 'SO_SNDBUF',
      value: new Uint8Array([0, 0x80, 6, 0]),
    });
    expect(linger!.value).toEqual(new Uint8Array([1, 0, 0, 0, 5, 0, 0, 0]));
    expect(congestion).toMatchObject({
      level: 6,
      name: 13,
      value: new TextEncoder().encode('cubic'),
    });
    expect(timeo!.value).toEqual(
      new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0x20, 0xa1, 7, 0, 0, 0, 0, 0]),
    );
  });

  test('names a raw option rewire knows by its C name', () => {
    const json = small();
    json.endpoints[0].options = [{ level: 6, name: 1, value: 'AQAAAA==' }];

    expect(parseManifest(json).endpoints[0]!.options[0]!.label).toBe('TCP_NODELAY');
  });

  test('writes options with their C name, typed value and raw value', () => {
    const json = manifestToJson(parseManifest(copy(fullManifest)));

    expect(json.endpoints[0]!.options[0]).toEqual({
      label: 'SO_SNDBUF',
      int: 425984,
      level: 1,
      name: 7,
      value: 'AIAGAA==',
    });
    expect(json).toEqual(fullManifest);
  });

  test('round-trips its own output', () => {
    const once = manifestToJson(parseManifest(copy(fullManifest)));
    const twice = manifestToJson(parseManifest(JSON.parse(JSON.stringify(once))));
    expect(twice).toEqual(once);
  });
});

describe('manifest rules', () => {
  test('formats several problems one per line, the action first', () => {
    const json = small();
    json.endpoints = [endpoint(0, [1]), endpoint(1, [5]), endpoint(2, [6]), endpoint(3, [5])];
    json.endpoints[2].peer = undefined;

    const err = manifestError(() => parseManifest(json));
    expect(err.message).toBe(
      'Cannot read manifest: 2 problems\n' +
        '  endpoints[2].peer: required for a connect endpoint\n' +
        '  endpoints[3].fds[0]: fd 5 appears twice (first at endpoints[1].fds[0])',
    );
    expect(err.issues).toEqual([
      {
        path: 'endpoints[2].peer',
        code: 'missing_peer',
        message: 'required for a connect endpoint',
      },
      {
        path: 'endpoints[3].fds[0]',
        code: 'duplicate_fd',
        message: 'fd 5 appears twice (first at endpoints[1].fds[0])',
      },
    ]);
    expect(err.toJSON()).toMatchObject({ code: 'EMANIFEST', issues: err.issues });
  });

  test('requires a peer for connect and accept endpoints', () => {
    for (const role of ['connect', 'accept']) {
      const json = small();
      json.endpoints[0] = endpoint(1, [5], { role, peer: undefined });
      expect(issueAt(json, 'endpoints[0].peer')).toEqual({
        code: 'missing_peer',
        message: `required for a ${role} endpoint`,
      });
    }
  });

  test('forbids a peer for listen endpoints', () => {
    const json = small();
    json.endpoints[0].role = 'listen';
    expect(issueAt(json, 'endpoints[0].peer').code).toBe('unexpected_peer');
  });

  test('rejects an endpoint id that appears twice', () => {
    const json = small();
    json.endpoints.push(endpoint(1, [6]));
    const issue = issueAt(json, 'endpoints[1].id');
    expect(issue.message).toBe(
      `endpoint '${SELF.hostId}:4121:${SELF.birthTime}:2#1' appears twice (first at endpoints[0].id)`,
    );
  });

  test("rejects an endpoint of another process than the manifest's", () => {
    const json = small();
    json.endpoints[0].id.process = PEER;
    expect(issueAt(json, 'endpoints[0].id.process').code).toBe('foreign_endpoint');
  });

  test('rejects an fd that appears twice in one endpoint', () => {
    const json = small();
    json.endpoints[0].fds = [5, 6, 5];
    expect(issueAt(json, 'endpoints[0].fds[2]').message).toBe(
      'fd 5 appears twice (first at endpoints[0].fds[0])',
    );
  });

  test('rejects an fd that appears in two endpoints', () => {
    const json = small();
    json.endpoints.push(endpoint(2, [8]), endpoint(3, [9, 5]));
    expect(issueAt(json, 'endpoints[2].fds[1]').code).toBe('duplicate_fd');
  });

  test('rejects negative and fractional fds and an endpoint without fds', () => {
    const json = small();
    json.endpoints.push(endpoint(2, [-1]), endpoint(3, []));
    expect(issueAt(json, 'endpoints[1].fds[0]').message).toBe(
      '-1 is not an fd number (0..2147483647)',
    );
    expect(issueAt(json, 'endpoints[2].fds').code).toBe('no_fds');

    const fractional = small();
    fractional.endpoints[0].fds = [1.5];
    expect(issueAt(fractional, 'endpoints[0].fds[0]').message).toBe('expected an integer, got 1.5');
  });

  test('rejects ports outside 0..65535', () => {
    for (const port of [-1, 65536]) {
      const json = small();
      json.endpoints[0].local = { family: 'inet', address: '10.0.0.1', port };
      expect(issueAt(json, 'endpoints[0].local.port').message).toBe(
        `${port} is not a port (0..65535)`,
      );
    }
  });

  test('requires an IP address of the right version for inet and inet6', () => {
    const json = small();
    json.endpoints[0].remote = { family: 'inet', port: 80 };
    expect(issueAt(json, 'endpoints[0].remote.address').code).toBe('required');

    json.endpoints[0].remote = { family: 'inet', address: '::1' };
    expect(issueAt(json, 'endpoints[0].remote.address').message).toBe(
      "'::1' is not an IPv4 address",
    );

    json.endpoints[0].family = 'inet6';
    json.endpoints[0].remote = { family: 'inet6', address: '10.0.0.1' };
    expect(issueAt(json, 'endpoints[0].remote.address').message).toBe(
      "'10.0.0.1' is not an IPv6 address",
    );
  });

  test('rejects an address whose family is not the endpoint family', () => {
    const json = small();
    json.endpoints[0].local = { family: 'inet6', address: '::1' };
    expect(issueAt(json, 'endpoints[0].local.family').code).toBe('family_mismatch');
  });

  test('takes a unix address with a path, an abstract name or neither, not both', () => {
    const json = small();
    json.endpoints[0].family = 'unix';
    for (const local of [{ path: '/tmp/s' }, { abstract: 'x' }, {}]) {
      json.endpoints[0].local = { family: 'unix', ...local };
      expect(() => parseManifest(json)).not.toThrow();
    }

    json.endpoints[0].local = { family: 'unix', path: '/tmp/s', abstract: 'x' };
    expect(issueAt(json, 'endpoints[0].local.abstract').code).toBe('conflicting_fields');
    json.endpoints[0].local = { family: 'unix', address: '10.0.0.1' };
    expect(issueAt(json, 'endpoints[0].local.address').code).toBe('unexpected_field');
    json.endpoints[0].local = { family: 'unix', path: `/${'x'.repeat(107)}` };
    expect(issueAt(json, 'endpoints[0].local.path').code).toBe('too_big');
  });

  test('rejects an inet address with a unix path', () => {
    const json = small();
    json.endpoints[0].local = { family: 'inet', address: '10.0.0.1', path: '/tmp/s' };
    expect(issueAt(json, 'endpoints[0].local.path').code).toBe('unexpected_field');
  });

  test('rejects drained bytes above 64 MiB', () => {
    const json = small();
    json.endpoints[0].drained = Buffer.alloc(MAX_DRAINED_BYTES + 1).toString('base64');
    expect(issueAt(json, 'endpoints[0].drained').message).toBe(
      'is 67108865 bytes; at most 64 MiB (67108864 bytes) are allowed',
    );

    json.endpoints[0].drained = Buffer.alloc(MAX_DRAINED_BYTES).toString('base64');
    expect(parseManifest(json).endpoints[0]!.drained).toHaveLength(MAX_DRAINED_BYTES);
  });

  test('rejects drained bytes that are not base64', () => {
    const json = small();
    json.endpoints[0].drained = 'not base64!';
    expect(issueAt(json, 'endpoints[0].drained').message).toBe(
      "expected base64 text, got 'not base64!'",
    );
  });

  test('rejects more than 100000 endpoints', () => {
    const json = small();
    json.endpoints = Array.from({ length: MAX_ENDPOINTS + 1 }, (_, i) => endpoint(i, [i]));
    const err = manifestError(() => parseManifest(json));
    expect(err.issues).toEqual([
      {
        path: 'endpoints',
        code: 'too_big',
        message: 'has 100001 endpoints; at most 100000 are allowed',
      },
    ]);
  });

  test('names an unknown socket option label', () => {
    const json = small();
    json.endpoints[0].options = [{ label: 'SO_SNDBUFF', int: 1 }];
    expect(issueAt(json, 'endpoints[0].options[0].label').message).toBe(
      "'SO_SNDBUFF' is not a socket option rewire knows; give level, name and value instead",
    );
  });

  test('keeps the label of an unknown option given with level, name and value', () => {
    const json = small();
    json.endpoints[0].options = [{ label: 'SO_VENDOR_X', level: 1, name: 999, value: 'AQID' }];
    expect(parseManifest(json).endpoints[0]!.options[0]!.label).toBe('SO_VENDOR_X');
  });

  test('rejects a typed value of the wrong kind, a missing value and values that disagree', () => {
    const json = small();
    json.endpoints[0].options = [
      { label: 'SO_LINGER', int: 1 },
      { label: 'SO_SNDBUF' },
      { label: 'SO_SNDBUF', int: 2, value: 'AQAAAA==' },
      { label: 'SO_SNDBUF', name: 8, int: 2 },
      { level: 1, name: 999, int: 2 },
      { level: 1, value: 'AQAAAA==' },
    ];
    expect(issueAt(json, 'endpoints[0].options[0].int').message).toBe(
      "SO_LINGER takes 'linger', not 'int'",
    );
    expect(issueAt(json, 'endpoints[0].options[1]').message).toBe(
      "SO_SNDBUF needs a value: give 'int' or a base64 'value'",
    );
    expect(issueAt(json, 'endpoints[0].options[2].value').code).toBe('conflicting_fields');
    expect(issueAt(json, 'endpoints[0].options[3].name').code).toBe('option_mismatch');
    expect(issueAt(json, 'endpoints[0].options[4].int').code).toBe('unexpected_field');
    expect(issueAt(json, 'endpoints[0].options[5].name').code).toBe('required');
  });

  test('names unknown fields, wrong types, bad enum values and missing fields', () => {
    const json = small();
    json.endpoints[0].drainned = '';
    json.endpoints[0].role = 'conect';
    json.endpoints[0].id.conn = 'one';
    delete json.executable;

    expect(issueAt(json, 'endpoints[0].drainned')).toEqual({
      code: 'unknown_field',
      message: 'unknown field',
    });
    expect(issueAt(json, 'endpoints[0].role').message).toBe(
      "expected one of 'connect', 'accept', 'listen', got 'conect'",
    );
    expect(issueAt(json, 'endpoints[0].id.conn').message).toBe("expected a number, got 'one'");
    expect(issueAt(json, 'executable')).toEqual({ code: 'required', message: 'required' });
  });

  test('puts a problem with the whole document on the first line', () => {
    const err = manifestError(() => parseManifest([]));
    expect(err.message).toBe('Cannot read manifest: expected an object, got an array');
    expect(err.issues).toEqual([
      { path: '', code: 'invalid_type', message: 'expected an object, got an array' },
    ]);
  });

  test('applies the same rules to a manifest from protobuf', () => {
    const m = parseManifest(copy(fullManifest));
    m.endpoints[1]!.fds = [5];
    const err = manifestError(() => validateManifest(decodeManifest(encodeManifest(m))));

    expect(err.code).toBe('EMANIFEST');
    expect(err.message).toBe(
      'Cannot use manifest: 1 problem\n  endpoints[1].fds[0]: fd 5 appears twice (first at endpoints[0].fds[0])',
    );
  });

  test('reports at most 100 problems and counts the rest', () => {
    const json = small();
    json.endpoints = Array.from({ length: 150 }, (_, i) => endpoint(i, [7]));
    const err = manifestError(() => parseManifest(json));

    expect(err.issues).toHaveLength(101);
    expect(err.issues[100]).toEqual({
      path: '',
      code: 'too_many_issues',
      message: '49 more problems not shown',
    });
    expect(err.message).toStartWith('Cannot read manifest: 149 problems\n');
    expect(err.message).toEndWith('\n  (top level): 49 more problems not shown');
  });
});

describe('reading a placement', () => {
  test('reads every field', () => {
    const p = parsePlacement(copy(fullPlacement));
    expect(p.version).toBe((1n << 64n) - 1n);
    expect(p.nodes[1]).toEqual({
      nodeId: 42n,
      address: 'fe80::2',
      port: 7781,
      name: 'n2',
      departed: true,
    });
    expect(p.replacements[0]!.old.generation).toBe(1);
  });

  test('rejects a node id that appears twice', () => {
    const json = copy(fullPlacement) as Json;
    json.nodes[2].nodeId = '42';
    expect(placementIssueAt(json, 'nodes[2].nodeId').message).toBe(
      "node '42' appears twice (first at nodes[1])",
    );
  });

  test('rejects an unroutable or malformed node address and a port of 0', () => {
    const json = copy(fullPlacement) as Json;
    json.nodes[0].address = '0.0.0.0';
    json.nodes[1].address = 'not an address';
    json.nodes[2].port = 0;
    expect(placementIssueAt(json, 'nodes[0].address').code).toBe('unroutable_address');
    expect(placementIssueAt(json, 'nodes[1].address').code).toBe('invalid_address');
    expect(placementIssueAt(json, 'nodes[2].port').message).toBe('0 is not a port (1..65535)');
  });

  test('rejects a process placed twice, on an unknown node or on a departed node', () => {
    const json = copy(fullPlacement) as Json;
    json.processes.push(
      { process: SELF, nodeId: '7' },
      { process: { ...SELF, pid: 9 }, nodeId: '42' },
    );
    expect(placementIssueAt(json, 'processes[2].process').code).toBe('duplicate_process');
    expect(placementIssueAt(json, 'processes[2].nodeId').message).toBe("node '7' is not in nodes");
    expect(placementIssueAt(json, 'processes[3].nodeId').message).toBe("node '42' has departed");
  });

  test('rejects a replacement by the same process and a process replaced twice', () => {
    const json = copy(fullPlacement) as Json;
    json.replacements.push(
      { old: SELF, new: SELF },
      { old: { ...PEER, generation: 1 }, new: SELF },
    );
    expect(placementIssueAt(json, 'replacements[1].new').code).toBe('same_process');
    expect(placementIssueAt(json, 'replacements[2].old').code).toBe('duplicate_replacement');
  });

  test('reports EPLACEMENT with the action first', () => {
    const err = manifestError(() => parsePlacement({ nodes: [] }));
    expect(err.code).toBe('EPLACEMENT');
    expect(err.message).toBe('Cannot read placement: 1 problem\n  version: required');
  });
});

describe('manifest files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewire-model-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('loads a manifest file', () => {
    const path = join(dir, 'good.json');
    writeFileSync(path, JSON.stringify(fullManifest));
    expect(manifestToJson(loadManifestFile(path))).toEqual(fullManifest as ManifestJson);
  });

  test('names the file that is missing', () => {
    const path = join(dir, 'missing.json');
    const err = manifestError(() => loadManifestFile(path));
    expect(err.code).toBe('EMANIFEST');
    expect(err.message).toBe(`Cannot read manifest '${path}': no such file (ENOENT)`);
  });

  test('reports a JSON syntax error as EMANIFEST naming the file', () => {
    const path = join(dir, 'broken.json');
    writeFileSync(path, '{"process": ');
    const err = manifestError(() => loadManifestFile(path));
    expect(err.code).toBe('EMANIFEST');
    expect(err.message).toStartWith(`Cannot read manifest '${path}': not JSON: `);
    expect(err.issues[0]!.code).toBe('json_syntax');
  });

  test('names the file and the field of an invalid manifest', () => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify({ ...small(), pid: -3 }));
    const err = manifestError(() => loadManifestFile(path));
    expect(err.message).toBe(`Cannot read manifest '${path}': 1 problem\n  pid: -3 is not a pid`);
  });

  test('loads a placement file, naming it on error', () => {
    const path = join(dir, 'placement.json');
    writeFileSync(path, JSON.stringify(fullPlacement));
    expect(loadPlacementFile(path).nodes).toHaveLength(3);

    const err = manifestError(() => loadPlacementFile(join(dir, 'nope.json')));
    expect(err.code).toBe('EPLACEMENT');
    expect(err.message).toContain("Cannot read placement '");
  });
});
