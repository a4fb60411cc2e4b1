/** Buyers an operator deleted: their tokens are refused on every api node. */
export const DELETED_USERS = 'stampede:deleted-users';
/** Pub/sub channel: a buyer was deleted (message: user id). */
export const USER_DELETED_CHANNEL = 'stampede:user-deleted';
