/**
 * The codec endpoint: Temporal's remote codec protocol (`POST …/encode`,
 * `POST …/decode`, `{payloads: [...]}` with base64 protobuf-JSON payloads)
 * over Keel's payload codec, so the Temporal Web UI and CLI show plaintext to
 * the operator while Temporal itself holds ciphertext. The codec is in codec/;
 * this file keeps HTTP: CORS, authentication, parsing.
 *
 * Two ways in, both needing the API key:
 * - `/codec/encode`, `/codec/decode` with `Authorization: Bearer <KEEL_API_KEY>`
 *   (the Temporal CLI's `--codec-auth`, a Web UI passing its access token);
 * - `/codec/ui/<token>/encode|decode`, the token derived from the key and given
 *   only by `GET /codec/ui-endpoint` (with the key), for a Web UI that sends no
 *   credentials (the dev server's `--ui-codec-endpoint`).
 * Browsers may call it from the configured Web UI origins only: CORS headers are
 * sent to those, preflights included, and to no other origin.
 */
import { timingSafeEqual } from 'node:crypto';
import express, { Router, type RequestHandler } from 'express';
import type { PayloadCodec } from '@temporalio/common';
import { codecUiToken, payloadsFromJson, payloadsToJson, PayloadDecryptionError } from '../codec';
import { HttpError, badRequest, route } from './errors';
import { bearerAuth } from './middleware';

/** What the codec endpoint needs; absent when KEEL_CODEC_KEY is not set. */
export interface CodecEndpointOptions {
  codec: PayloadCodec;
  /** KEEL_CODEC_UI_ORIGINS: the browser origins allowed to call it. */
  uiOrigins: readonly string[];
}

/** History payloads can be large (Temporal warns at 256 KB each and refuses 2 MB); a page of them fits. */
const CODEC_BODY_LIMIT = '8mb';
const PREFLIGHT_MAX_AGE_S = 600;

/** CORS for the allowed origins only; an OPTIONS preflight is answered here, with headers or without. */
function cors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.get('origin');
    res.vary('Origin');
    if (origin && allowed.has(origin)) {
      res.set({
        'Access-Control-Allow-Origin': origin,
        // The Web UI's "include cross-origin credentials" setting needs this, with the exact origin above.
        'Access-Control-Allow-Credentials': 'true',
      });
      if (req.method === 'OPTIONS') {
        res.set({
          'Access-Control-Allow-Methods': 'POST, OPTIONS',
          'Access-Control-Allow-Headers': 'Content-Type, Authorization, X-Namespace',
          'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE_S),
        });
      }
    }
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next();
  };
}

/** 401 unless the path's token is the one derived from the API key; compared in constant time. */
function uiTokenAuth(apiKey: string): RequestHandler {
  const expected = Buffer.from(codecUiToken(apiKey));
  return (req, _res, next) => {
    const given = Buffer.from(String(req.params.token ?? ''));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      next(new HttpError(401, 'unauthorized', 'unknown codec endpoint token (GET /codec/ui-endpoint gives it)'));
      return;
    }
    next();
  };
}

/** POST encode or decode: the payloads through the codec, answered in the same shape. */
function convert(codec: PayloadCodec, direction: 'encode' | 'decode'): RequestHandler {
  return route(async (req, res) => {
    let payloads;
    try {
      payloads = payloadsFromJson(req.body);
    } catch (err) {
      throw badRequest(err instanceof Error ? err.message : String(err));
    }
    try {
      res.json(payloadsToJson(await codec[direction](payloads)));
    } catch (err) {
      // An unknown key id or an altered payload: the caller's data, not our failure.
      if (err instanceof PayloadDecryptionError) throw new HttpError(422, 'undecryptable', err.message);
      throw err;
    }
  });
}

/**
 * The `/codec` routes. Without a codec (no KEEL_CODEC_KEY) every one answers
 * 404 saying how to turn encryption on, after the same authentication.
 */
export function codecRoutes(apiKey: string, options: CodecEndpointOptions | undefined): Router {
  const router = Router();
  router.use(cors(options?.uiOrigins ?? []));
  const off: RequestHandler = (_req, _res, next) =>
    next(new HttpError(404, 'not_found', 'payload encryption is off: set KEEL_CODEC_KEY'));
  const body = express.json({ limit: CODEC_BODY_LIMIT, type: () => true });

  /** GET /codec/ui-endpoint — the endpoint (with its token) to give a Web UI that cannot send the key. */
  router.get('/ui-endpoint', bearerAuth(apiKey), (req, res, next) => {
    if (!options) return off(req, res, next);
    const base = `${req.protocol}://${req.get('host')}${req.baseUrl}`;
    res.json({ endpoint: `${base}/ui/${codecUiToken(apiKey)}` });
  });

  for (const direction of ['encode', 'decode'] as const) {
    const handler = options ? convert(options.codec, direction) : off;
    // The key is checked before the body is read, as on /v1.
    router.post(`/${direction}`, bearerAuth(apiKey), body, handler);
    router.post(`/ui/:token/${direction}`, uiTokenAuth(apiKey), body, handler);
  }
  return router;
}
