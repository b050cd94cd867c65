import { describe, expect, test } from 'bun:test';

import {
  decodeControlReply,
  decodeControlRequest,
  decodeManifest,
  decodePeerFrame,
  decodePlacement,
  encodeControlReply,
  encodeControlRequest,
  encodeManifest,
  encodePeerFrame,
  encodePlacement,
} from '../../src/model/codec.ts';
import { FrameError } from '../../src/model/errors.ts';
import type { ControlReply, PeerFrame } from '../../src/model/frames.ts';
import {
  manifestToJson,
  parseManifest,
  parsePlacement,
  placementToJson,
} from '../../src/model/schema.ts';
import type { EndpointId, Manifest, ProcessId } from '../../src/model/types.ts';
import { copy, fullManifest, fullPlacement } from './fixtures.ts';

const U64_MAX = (1n << 64n) - 1n;

const self: ProcessId = { hostId: U64_MAX, pid: 4121, birthTime: 1n << 63n, generation: 3 };
const other: ProcessId = { hostId: (1n << 53n) + 1n, pid: 77, birthTime: 12n, generation: 0 };
const from: EndpointId = { process: self, conn: 4_294_967_295 };
const to: EndpointId = { process: other, conn: 0 };

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

function decodeError(run: () => unknown): FrameError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    expect((err as FrameError).code).toBe('EFRAME');
    return err as FrameError;
  }
  throw new Error('expected a FrameError');
}

describe('manifest', () => {
  test('round-trips JSON to model to protobuf to model to JSON with every field set', () => {
    const model = parseManifest(copy(fullManifest));
    const back = decodeManifest(encodeManifest(model));

    expect(back).toEqual(model);
    expect(manifestToJson(back)).toEqual(fullManifest);
  });

  test('keeps 64-bit ids exact at 0, 2^53+1, 2^63 and 2^64-1', () => {
    for (const id of [0n, (1n << 53n) + 1n, 1n << 63n, U64_MAX]) {
      const m = parseManifest(copy(fullManifest));
      m.process = { ...m.process, hostId: id, birthTime: U64_MAX - id };
      m.endpoints = m.endpoints.map((e) => ({ ...e, id: { ...e.id, process: m.process } }));
      m.endpoints[0]!.peerNode = id === 0n ? undefined : id;

      const back = decodeManifest(encodeManifest(m));
      expect(back.process.hostId).toBe(id);
      expect(back.process.birthTime).toBe(U64_MAX - id);
      expect(back.endpoints[0]!.peerNode).toBe(id === 0n ? undefined : id);
    }
  });

  test('gives byte fields as plain Uint8Arrays', () => {
    const back = decodeManifest(encodeManifest(parseManifest(copy(fullManifest))));

    expect(back.endpoints[0]!.drained.constructor).toBe(Uint8Array);
    expect(back.endpoints[1]!.drained.constructor).toBe(Uint8Array);
    expect(back.endpoints[0]!.options[0]!.value.constructor).toBe(Uint8Array);
    expect(encodeManifest(back).constructor).toBe(Uint8Array);
  });

  test('round-trips a manifest of 10000 endpoints', () => {
    const m = parseManifest(copy(fullManifest));
    const template = m.endpoints[1]!;
    m.endpoints = Array.from({ length: 10_000 }, (_, i) => ({
      ...template,
      id: { process: m.process, conn: i },
      fds: [100 + i],
    }));

    const back = decodeManifest(encodeManifest(m));
    expect(back.endpoints).toHaveLength(10_000);
    expect(back.endpoints[9_999]!.fds).toEqual([10_099]);
    expect(back).toEqual(m);
  });

  test('rejects an unspecified role, naming the endpoint', () => {
    const m = parseManifest(copy(fullManifest));
    m.endpoints[2]!.role = 'bogus' as never;

    const err = decodeError(() => decodeManifest(encodeManifest(m)));
    expect(err.message).toBe('Cannot decode manifest: endpoints[2].role is unspecified');
  });

  test('rejects a manifest without a process', () => {
    const err = decodeError(() => decodeManifest(new Uint8Array(0)));
    expect(err.message).toBe('Cannot decode manifest: process is missing');
  });

  test('refuses to encode a 64-bit id outside 0..2^64-1', () => {
    const m = parseManifest(copy(fullManifest));
    m.nodeId = U64_MAX + 1n;

    const err = decodeError(() => encodeManifest(m));
    expect(err.message).toBe(
      'Cannot encode manifest: nodeId 18446744073709551616 is outside 0..2^64-1',
    );
  });
});

describe('placement', () => {
  test('round-trips JSON to model to protobuf to model to JSON', () => {
    const model = parsePlacement(copy(fullPlacement));
    const back = decodePlacement(encodePlacement(model));

    expect(back).toEqual(model);
    expect(placementToJson(back)).toEqual(fullPlacement);
  });
});

describe('peer frames', () => {
  const frames: PeerFrame[] = [
    { kind: 'hello', hello: { version: 1, nodeId: U64_MAX, nonce: new Uint8Array(32).fill(7) } },
    {
      kind: 'challenge',
      challenge: { nodeId: 1n << 63n, nonce: new Uint8Array(32).fill(1), proof: bytes(1, 2, 3) },
    },
    { kind: 'join', join: { proof: bytes(9, 9) } },
    { kind: 'joined' },
    {
      kind: 'offers',
      offers: [
        {
          ticket: bytes(1, 2),
          from,
          to,
          placementVersion: U64_MAX,
          drained: bytes(0, 255),
          waitMs: 4_294_967_295,
        },
        {
          ticket: bytes(3),
          from: to,
          to: from,
          placementVersion: 0n,
          drained: new Uint8Array(0),
          waitMs: 0,
        },
      ],
    },
    {
      kind: 'answers',
      answers: [
        {
          ticket: bytes(1, 2),
          accepted: { endpoint: to, drained: new Uint8Array(0), placementVersion: 5n },
        },
        { ticket: bytes(3), refused: { code: 'EPEER_CHANGED', message: 'Cannot attach: moved' } },
      ],
    },
  ];

  for (const frame of frames) {
    test(`round-trips ${frame.kind}`, () => {
      expect(decodePeerFrame(encodePeerFrame(frame))).toEqual(frame);
    });
  }

  test('rejects a frame with no body', () => {
    const err = decodeError(() => decodePeerFrame(new Uint8Array(0)));
    expect(err.message).toBe(
      'Cannot decode peer frame: it has no body (expected one of hello, challenge, join, joined, offers, answers, query, captures)',
    );
  });

  test('rejects an offer without its accept-side endpoint, naming the offer', () => {
    // PeerFrame.offers (10) = Offers { offers (1) = [ Offer { from (2) = { process {}, conn 1 } } ] }.
    const offer = bytes(0x12, 0x04, 0x0a, 0x00, 0x10, 0x01);
    const offers = bytes(0x0a, offer.length, ...offer);
    const frame = bytes(0x52, offers.length, ...offers);

    const err = decodeError(() => decodePeerFrame(frame));
    expect(err.message).toBe('Cannot decode peer frame: offers[0].to is missing');
  });

  test('rejects an answer that is neither accepted nor refused', () => {
    // PeerFrame.answers (11) = Answers { answers (1) = [ Answer { ticket (1) = 0x07 } ] }.
    const answer = bytes(0x0a, 0x01, 0x07);
    const answers = bytes(0x0a, answer.length, ...answer);
    const frame = bytes(0x5a, answers.length, ...answers);

    const err = decodeError(() => decodePeerFrame(frame));
    expect(err.message).toBe(
      'Cannot decode peer frame: answers[0] has neither accepted nor refused',
    );
  });

  test('rejects garbage bytes with EFRAME', () => {
    const garbage = [
      bytes(0xff, 0xff, 0xff),
      bytes(0x0a, 0x10, 0x01),
      bytes(0x0f),
      bytes(0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
      new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'),
    ];
    for (const input of garbage) {
      const err = decodeError(() => decodePeerFrame(input));
      expect(err.message).toStartWith('Cannot decode peer frame: ');
    }
  });

  test('rejects truncated frames with EFRAME', () => {
    const whole = encodePeerFrame(frames[4]!);
    for (let n = 1; n < whole.length; n++) decodeError(() => decodePeerFrame(whole.subarray(0, n)));
  });
});

describe('control frames', () => {
  test('round-trips a restore request with its manifest', () => {
    const manifest: Manifest = parseManifest(copy(fullManifest));
    const request = {
      kind: 'restore' as const,
      restore: { manifest, deadlineMs: 30_000, keepOpen: true },
    };

    expect(decodeControlRequest(encodeControlRequest(request))).toEqual(request);
  });

  const replies: ControlReply[] = [
    {
      kind: 'endpoint',
      endpoint: {
        id: from,
        status: 'live',
        how: 'remote',
        fds: [5, 9],
        attached: 1,
        peer: to,
      },
    },
    {
      kind: 'endpoint',
      endpoint: {
        id: to,
        status: 'failed',
        code: 'EPEER_GONE',
        message: 'Cannot restore endpoint: node 42 has departed',
        fds: [7],
        attached: 0,
      },
    },
    {
      kind: 'done',
      done: { restoreId: 'r-1', live: 3, dead: 1, failed: 1, placementVersion: U64_MAX },
    },
    {
      kind: 'done',
      done: {
        restoreId: 'r-2',
        live: 0,
        dead: 0,
        failed: 4,
        placementVersion: 0n,
        code: 'EDEADLINE',
        message: 'Cannot restore: deadline passed',
      },
    },
  ];

  for (const [i, reply] of replies.entries()) {
    test(`round-trips reply ${i} (${reply.kind})`, () => {
      expect(decodeControlReply(encodeControlReply(reply))).toEqual(reply);
    });
  }

  test('rejects a request with no body and a restore with no manifest', () => {
    expect(decodeError(() => decodeControlRequest(new Uint8Array(0))).message).toContain('no body');
    const noManifest = bytes(0x0a, 0x02, 0x10, 0x05);
    expect(decodeError(() => decodeControlRequest(noManifest)).message).toBe(
      'Cannot decode control request: restore.manifest is missing',
    );
  });

  test('rejects an endpoint result with an unknown status', () => {
    // ControlReply.endpoint (1) = EndpointResult { id { process {} }, status 9 }.
    const result = bytes(0x0a, 0x02, 0x0a, 0x00, 0x10, 0x09);
    const reply = bytes(0x0a, result.length, ...result);

    const err = decodeError(() => decodeControlReply(reply));
    expect(err.message).toBe(
      'Cannot decode control reply: endpoint.status has the unknown value 9',
    );
  });

  test('rejects an endpoint result with an unspecified status', () => {
    const result = bytes(0x0a, 0x02, 0x0a, 0x00);
    const err = decodeError(() => decodeControlReply(bytes(0x0a, result.length, ...result)));
    expect(err.message).toBe('Cannot decode control reply: endpoint.status is unspecified');
  });

  test('rejects garbage bytes with EFRAME', () => {
    decodeError(() => decodeControlReply(bytes(0xff, 0xff, 0xff)));
    decodeError(() => decodeControlRequest(bytes(0x0a, 0x7f)));
    decodeError(() => decodeManifest(bytes(0x0a, 0x05, 0x08)));
    decodeError(() => decodePlacement(bytes(0x0b)));
  });
});

describe('repeated values', () => {
  const option = { level: 6, name: 1, value: Uint8Array.of(1, 0, 0, 0), label: 'TCP_NODELAY' };
  const endpointOf = (p: ProcessId, conn: number, peer: ProcessId) => ({
    id: { process: p, conn },
    peer: { process: peer, conn },
    role: 'connect' as const,
    family: 'inet' as const,
    type: 'stream' as const,
    protocol: 6,
    fds: [10 + conn],
    options: [option],
    drained: new Uint8Array(0),
  });

  test('a process id and an option that repeat are decoded once, and stay right', () => {
    const m: Manifest = {
      process: self,
      executable: 'rank',
      pid: 0,
      endpoints: [
        endpointOf(self, 1, other),
        endpointOf(self, 2, other),
        endpointOf(self, 3, self),
      ],
    };
    const bytes = encodeManifest(m);
    const back = decodeManifest(bytes);

    expect(back).toEqual(m);
    const [e1, e2, e3] = back.endpoints as [
      Manifest['endpoints'][0],
      Manifest['endpoints'][0],
      Manifest['endpoints'][0],
    ];
    expect(e1.id.process).toBe(e2.id.process);
    expect(e1.peer!.process).toBe(e2.peer!.process);
    expect(e1.id.process).not.toBe(e1.peer!.process);
    expect(e3.peer!.process).toBe(e1.id.process);
    expect(e1.options[0]).toBe(e2.options[0]);
    // The shared option owns its bytes: changing the message afterwards does not reach it.
    bytes.fill(0);
    expect(Array.from(e1.options[0]!.value)).toEqual([1, 0, 0, 0]);
  });

  test('process ids that differ in any one field are not taken for each other', () => {
    const variants: ProcessId[] = [
      self,
      { ...self, pid: self.pid + 1 },
      { ...self, generation: self.generation + 1 },
      { ...self, hostId: self.hostId - 1n },
      { ...self, birthTime: self.birthTime + 1n },
      { ...self, hostId: self.hostId - (1n << 32n) },
    ];
    const m: Manifest = {
      process: self,
      executable: 'rank',
      pid: 0,
      endpoints: variants.map((p, i) => endpointOf(self, i + 1, p)),
    };
    const back = decodeManifest(encodeManifest(m));

    expect(back.endpoints.map((e) => e.peer!.process)).toEqual(variants);
  });
});
