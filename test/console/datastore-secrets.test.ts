import { describe, expect, it } from 'vitest';
import { SECRET_ATTRIBUTES as API_SECRETS } from '#core/datastore-attributes.ts';
import { SECRET_ATTRIBUTES } from '../../console/src/datastore-form.ts';

describe('the console datastore form', () => {
  it('asks apart, in password fields, exactly the attributes the API keeps secret', () => {
    expect(SECRET_ATTRIBUTES).toEqual(API_SECRETS);
  });
});
