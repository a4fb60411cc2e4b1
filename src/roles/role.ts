/** What every process role returns: a way to stop it gracefully. */
export interface Role {
  stop(): Promise<void>;
}

