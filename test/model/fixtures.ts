/**
 * Manifests and placements in their JSON form, written as `manifestToJson` writes them, with
 * every field set. Option values are written out by hand (little-endian, LP64) so that tests
 * check the encoder against bytes it did not compute.
 */
import type { ManifestJson, PlacementJson } from '../../src/model/schema.ts';

/** A process whose 64-bit ids are at and above 2^63. */
export const SELF = {
  hostId: '18446744073709551615',
  pid: 4121,
  birthTime: '9223372036854775809',
  generation: 2,
};

export const PEER = {
  hostId: '12297829382473034410',
  pid: 77,
  birthTime: '1700000000123456789',
  generation: 2,
};

export const fullManifest: ManifestJson = {
  process: SELF,
  executable: 'orted',
  pid: 5120,
  checkpointPid: 4121,
  nodeId: '9223372036854775808',
  job: 'job-42',
  endpoints: [
    {
      id: { process: SELF, conn: 1 },
      peer: { process: PEER, conn: 9 },
      role: 'connect',
      family: 'inet6',
      type: 'stream',
      protocol: 6,
      fds: [5, 9],
      local: { family: 'inet6', address: 'fe80::1', port: 40000, scopeId: 2, flowinfo: 7 },
      remote: { family: 'inet6', address: 'fe80::2', port: 7780, scopeId: 2 },
      options: [
        { label: 'SO_SNDBUF', int: 425984, level: 1, name: 7, value: 'AIAGAA==' },
        {
          label: 'SO_LINGER',
          linger: { onoff: true, seconds: 5 },
          level: 1,
          name: 13,
          value: 'AQAAAAUAAAA=',
        },
        {
          label: 'TCP_CONGESTION',
          string: 'cubic',
          level: 6,
          name: 13,
          value: 'Y3ViaWMAAAAAAAAAAAAAAA==',
        },
        {
          label: 'SO_RCVTIMEO',
          timevalMicros: 2500000,
          level: 1,
          name: 20,
          value: 'AgAAAAAAAAAgoQcAAAAAAA==',
        },
        { label: 'SO_VENDOR_X', level: 1, name: 999, value: 'AQID' },
        { level: 6, name: 998, value: 'AA==' },
      ],
      fcntl: { statusFlags: 2050, owner: 4121, signal: 29, cloexec: true },
      drained: 'aGVsbG8A/yB3b3JsZA==',
      peerNode: '18446744073709551614',
      peerExecutable: 'orted',
      unsent: 'bm90IHlldCByZWNlaXZlZA==',
    },
    {
      id: { process: SELF, conn: 2 },
      peer: { process: PEER, conn: 10 },
      role: 'accept',
      family: 'inet',
      type: 'stream',
      protocol: 6,
      fds: [7],
      local: { family: 'inet', address: '10.0.0.1', port: 7000 },
      remote: { family: 'inet', address: '10.0.0.2', port: 51000 },
      options: [{ label: 'TCP_NODELAY', int: 1, level: 6, name: 1, value: 'AQAAAA==' }],
      drained: '',
    },
    {
      id: { process: SELF, conn: 3 },
      role: 'listen',
      family: 'inet',
      type: 'stream',
      protocol: 6,
      fds: [3],
      local: { family: 'inet', address: '0.0.0.0', port: 7000 },
      backlog: 128,
      options: [],
      drained: '',
    },
    {
      id: { process: SELF, conn: 4 },
      peer: { process: PEER, conn: 11 },
      role: 'connect',
      family: 'unix',
      type: 'seqpacket',
      protocol: 0,
      fds: [11],
      local: { family: 'unix', abstract: 'rewire-test\u0001' },
      remote: { family: 'unix', path: '/run/rewire/x.sock' },
      options: [],
      drained: 'AQID',
    },
  ],
};

export const fullPlacement: PlacementJson = {
  version: '18446744073709551615',
  nodes: [
    { nodeId: '9223372036854775808', address: '10.0.0.1', port: 7780, name: 'n1' },
    { nodeId: '42', address: 'fe80::2', port: 7781, name: 'n2', departed: true },
    { nodeId: '18446744073709551615', address: 'node3.cluster', port: 7780 },
  ],
  processes: [
    { process: SELF, nodeId: '9223372036854775808' },
    { process: PEER, nodeId: '18446744073709551615' },
  ],
  replacements: [{ old: { ...PEER, generation: 1 }, new: PEER }],
};

/** A deep copy of a fixture, to change in one test. */
export function copy<T>(value: T): T {
  return structuredClone(value);
}
