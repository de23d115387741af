/**
 * Sign-in with an API token (`lifeboat token create`, or the local admin's in endpoint.json).
 * The token is checked against the API before it is kept; a refusal shows the API's message.
 */
import Box from '@cloudscape-design/components/box';
import Button from '@cloudscape-design/components/button';
import Container from '@cloudscape-design/components/container';
import Form from '@cloudscape-design/components/form';
import FormField from '@cloudscape-design/components/form-field';
import Header from '@cloudscape-design/components/header';
import Input from '@cloudscape-design/components/input';
import { type FormEvent, useState } from 'react';
import { type UserView, whoAmI } from './api.ts';

/** The sign-in form; `onSignedIn` gets the checked token and its user. */
export function SignIn({ onSignedIn }: { onSignedIn(token: string, user: UserView): void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(token.trim(), await whoAmI(token.trim()));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Box padding="xxl">
      <div style={{ maxWidth: 560, margin: '0 auto' }}>
        {/* A form submitted by POST to nowhere: the token never lands in the URL. */}
        <form onSubmit={submit} method="post" action="#">
          <Form
            header={<Header variant="h1">Lifeboat</Header>}
            actions={
              <Button variant="primary" formAction="submit" loading={busy} disabled={!token.trim()}>
                Sign in
              </Button>
            }
            errorText={error && `Sign-in failed: ${error}`}
          >
            <Container header={<Header variant="h2">Sign in</Header>}>
              <FormField
                label="API token"
                description="A token from `lifeboat token create`, or the local admin's in ~/.lifeboat/endpoint.json. Kept in this tab only."
              >
                <Input
                  type="password"
                  value={token}
                  onChange={({ detail }) => setToken(detail.value)}
                  autoComplete={false}
                  ariaLabel="API token"
                  autoFocus
                />
              </FormField>
            </Container>
          </Form>
        </form>
      </div>
    </Box>
  );
}
