/**
 * Switchyard's HTTP API as a framework-free Web `Request` → `Response` handler.
 * @module
 */
export {
  checkBearer,
  checkHmac,
  HMAC_SIGNATURE_HEADER,
  HMAC_TIMESTAMP_HEADER,
  type HttpAuth,
  safeEqual,
  signRequest,
} from './auth.js';
export {
  createHttpHandler,
  type HttpErrorBody,
  type HttpHandlerOptions,
  type TransportFlag,
} from './handler.js';
