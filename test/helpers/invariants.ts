export { auditSale, type SaleAudit } from '../../src/sales/audit.js';
