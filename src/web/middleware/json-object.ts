import express, { type RequestHandler } from 'express';
import { JsonNotObjectError } from '../../errors.ts';
import { utf8Json } from './utf8.ts';

/**
 * express.json, reading UTF-8 only (utf8Json) and taking one JSON object. Its strict mode lets an
 * array through as well as an object; every route reads named fields, so `[]` is refused as `null`
 * or `1` are (400 invalid_json), not answered field by field under the name of no field.
 */
export function jsonObject(options: { limit: string | number; type?: string[] }): RequestHandler {
  const parse = express.json({ ...options, verify: utf8Json });
  return (req, res, next) => parse(req, res, (err?: unknown) => next(err ?? (Array.isArray(req.body) ? new JsonNotObjectError() : undefined)));
}
