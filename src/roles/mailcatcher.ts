import { loadConfig, type Config } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/log.js';
import { MailCatcher } from '../dev/mail-catcher.js';
import type { Role } from './role.js';

/**
 * The `mailcatcher` role (src/dev/mail-catcher.ts): `stampede start` runs it
 * beside the others when STAMPEDE_SMTP_URL is the default (catchesMail in
 * src/roles/all.ts), so the e-mail
 * worker has somewhere to send and a newcomer can read what it sent at
 * GET http://127.0.0.1:STAMPEDE_MAILCATCHER_HTTP_PORT/messages.
 */
export async function startMailcatcher(
  cfg: Config = loadConfig(),
  log: Logger = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'mailcatcher'),
): Promise<Role & { smtpUrl: string; messagesUrl: string }> {
  const smtp = new URL(cfg.STAMPEDE_SMTP_URL);
  const catcher = new MailCatcher({
    smtpHost: smtp.hostname, smtpPort: Number(smtp.port || 25), httpPort: cfg.STAMPEDE_MAILCATCHER_HTTP_PORT, keep: cfg.STAMPEDE_MAILCATCHER_KEEP,
    onConnectionError: (err) => log.warn({ err }, 'a sender\'s connection failed'),
  });
  const where = await catcher.start();
  log.info(where, 'mail catcher listening');
  return {
    ...where,
    async stop() {
      await catcher.stop();
      log.info('mail catcher stopped');
    },
  };
}
