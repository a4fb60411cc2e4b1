export { auditSale, type SaleAudit } from '../../src/audit.js';
