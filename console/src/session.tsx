/** The signed-in session (token and user), given to every page. */
import { createContext, useContext } from 'react';
import type { UserView } from './api.ts';

/** A signed-in session. */
export interface Session {
  token: string;
  /** Who the token belongs to (`GET /me`). */
  user: UserView;
}

export const SessionContext = createContext<Session | undefined>(undefined);

/** The current session; only pages under a signed-in App call it. */
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in console');
  return session;
}
