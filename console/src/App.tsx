/**
 * The console's shell: sign-in until a token is accepted, then the AWS-console-like layout
 * (top bar with the user, side navigation, pages). Pages are addressed by the URL's hash
 * (`#/vms`; `#/` the dashboard), so the gateway serves one index.html and the token never appears in a URL.
 */
import AppLayout from '@cloudscape-design/components/app-layout';
import SideNavigation from '@cloudscape-design/components/side-navigation';
import TopNavigation from '@cloudscape-design/components/top-navigation';
import { useEffect, useState } from 'react';
import { clearToken, storedToken, storeToken, type UserView, whoAmI } from './api.ts';
import { ChartsPage } from './pages/ChartsPage.tsx';
import { DashboardPage } from './pages/DashboardPage.tsx';
import { DatastorePage } from './pages/DatastorePage.tsx';
import { DatastoresPage } from './pages/DatastoresPage.tsx';
import { DrillsPage } from './pages/DrillsPage.tsx';
import { ExecutionPage } from './pages/ExecutionPage.tsx';
import { ExecutionsPage } from './pages/ExecutionsPage.tsx';
import { HostsPage } from './pages/HostsPage.tsx';
import { ImagePage } from './pages/ImagePage.tsx';
import { ImagesPage } from './pages/ImagesPage.tsx';
import { JobsPage } from './pages/JobsPage.tsx';
import { VmPage } from './pages/VmPage.tsx';
import { VmsPage } from './pages/VmsPage.tsx';
import { SignIn } from './SignIn.tsx';
import { type Session, SessionContext } from './session.tsx';

/** The current hash route (`/vms`), following navigation. */
function useRoute(): string {
  const [route, setRoute] = useState(() => location.hash.slice(1) || '/');
  useEffect(() => {
    const onChange = () => setRoute(location.hash.slice(1) || '/');
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

/** The page of a route. */
function Page({ route }: { route: string }) {
  const execution = /^\/executions\/(.+)$/.exec(route);
  if (execution?.[1]) return <ExecutionPage id={decodeURIComponent(execution[1])} />;
  const vm = /^\/vms\/(\d+)$/.exec(route);
  if (vm?.[1]) return <VmPage id={Number(vm[1])} />;
  const image = /^\/images\/(\d+)$/.exec(route);
  if (image?.[1]) return <ImagePage id={Number(image[1])} />;
  const datastore = /^\/datastores\/(\d+)$/.exec(route);
  if (datastore?.[1]) return <DatastorePage id={Number(datastore[1])} />;
  if (route === '/executions') return <ExecutionsPage />;
  if (route === '/vms') return <VmsPage />;
  if (route === '/datastores') return <DatastoresPage />;
  if (route === '/hosts') return <HostsPage />;
  if (route === '/images') return <ImagesPage />;
  if (route === '/drills') return <DrillsPage />;
  if (route === '/jobs') return <JobsPage />;
  if (route === '/charts') return <ChartsPage />;
  return <DashboardPage />;
}

/** The whole console. */
export function App() {
  const [session, setSession] = useState<Session | undefined>();
  const [restoring, setRestoring] = useState(() => storedToken() !== undefined);
  const route = useRoute();

  // A token kept from earlier in this tab: check it again (it may have been revoked).
  useEffect(() => {
    const token = storedToken();
    if (!token) return;
    whoAmI(token).then(
      (user) => {
        setSession({ token, user });
        setRestoring(false);
      },
      () => {
        clearToken();
        setRestoring(false);
      },
    );
  }, []);

  function signIn(token: string, user: UserView) {
    storeToken(token);
    setSession({ token, user });
  }

  function signOut() {
    clearToken();
    setSession(undefined);
  }

  if (restoring) return null;
  if (!session) return <SignIn onSignedIn={signIn} />;
  const userText = `${session.user.name} (${session.user.group})`;
  return (
    <SessionContext.Provider value={session}>
      <div id="top-nav" style={{ position: 'sticky', top: 0, zIndex: 1002 }}>
        <TopNavigation
          identity={{ href: '#/', title: 'Lifeboat' }}
          i18nStrings={{
            overflowMenuTriggerText: 'More',
            overflowMenuTitleText: 'All',
            overflowMenuBackIconAriaLabel: 'Back',
            overflowMenuDismissIconAriaLabel: 'Close menu',
          }}
          utilities={[
            {
              type: 'menu-dropdown',
              text: userText,
              description: session.user.admin ? 'admin' : undefined,
              iconName: 'user-profile',
              items: [{ id: 'signout', text: 'Sign out' }],
              onItemClick: ({ detail }) => {
                if (detail.id === 'signout') signOut();
              },
            },
          ]}
        />
      </div>
      <AppLayout
        headerSelector="#top-nav"
        toolsHide
        ariaLabels={{
          navigation: 'Side navigation',
          navigationClose: 'Close side navigation',
          navigationToggle: 'Open side navigation',
          notifications: 'Notifications',
        }}
        navigation={
          <SideNavigation
            header={{ href: '#/', text: 'Lifeboat' }}
            activeHref={`#${/^\/(executions|vms|datastores|images)\//.test(route) ? route.replace(/^(\/[a-z]+)\/.*$/, '$1') : route}`}
            items={[
              { type: 'link', text: 'Dashboard', href: '#/' },
              { type: 'link', text: 'VMs', href: '#/vms' },
              { type: 'link', text: 'Images', href: '#/images' },
              { type: 'link', text: 'Restore drills', href: '#/drills' },
              { type: 'link', text: 'Backup jobs', href: '#/jobs' },
              { type: 'link', text: 'Executions', href: '#/executions' },
              { type: 'link', text: 'Datastores', href: '#/datastores' },
              { type: 'link', text: 'Hosts', href: '#/hosts' },
              { type: 'link', text: 'Charts', href: '#/charts' },
            ]}
          />
        }
        content={<Page route={route} />}
      />
    </SessionContext.Provider>
  );
}
