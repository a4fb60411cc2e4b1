/** The webhooks product's settings, read from the configuration once. */
import type { Config } from '../platform/config.js';
import type { EndpointSettings } from './endpoints.js';
import type { DispatchSettings } from './dispatcher.js';

export const endpointSettingsOf = (cfg: Config): EndpointSettings => ({
  allowPrivate: cfg.STAMPEDE_WEBHOOK_ALLOW_PRIVATE, httpsOnly: cfg.NODE_ENV === 'production', secretOverlapMs: cfg.STAMPEDE_WEBHOOK_SECRET_OVERLAP_MS,
});

export const dispatchSettingsOf = (cfg: Config): Omit<DispatchSettings, 'pool' | 'log' | 'endpointDisabled'> => ({
  scheduleMs: cfg.webhookScheduleMs, retryAfterMaxMs: cfg.STAMPEDE_WEBHOOK_RETRY_AFTER_MAX_MS, timeoutMs: cfg.STAMPEDE_WEBHOOK_TIMEOUT_MS,
  allowPrivate: cfg.STAMPEDE_WEBHOOK_ALLOW_PRIVATE, concurrency: cfg.STAMPEDE_WEBHOOK_CONCURRENCY, perEndpoint: cfg.STAMPEDE_WEBHOOK_ENDPOINT_CONCURRENCY,
  pollMs: cfg.STAMPEDE_WEBHOOK_POLL_MS, disableAfterMs: cfg.STAMPEDE_WEBHOOK_DISABLE_AFTER_MS,
});
