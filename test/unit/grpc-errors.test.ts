import { ApiError } from '@google-cloud/storage';
import { GoogleError } from 'google-gax';
import { describe, expect, it } from 'vitest';
import { deniedPermission, fromGrpcError, fromHttpError, GrpcCode } from '#shared/clients/grpc-errors.js';
import { publishError } from '#shared/clients/pubsub.js';
import { PermanentError, PermissionDeniedError, TransientError } from '#shared/runtime/errors.js';

/**
 * How the adapters classify Google's permission errors, built with the clients' own error types
 * (gax's GoogleError parsed from an API's JSON error, Storage's ApiError). A missing grant is
 * retryable: it is fixed within the trigger's retry window, and acking it would drop the event.
 */

/** A google.rpc.Status as Google's APIs return it for a missing IAM permission (AIP-193). */
function iamDenied(permission: string, message: string): GoogleError {
  return GoogleError.parseHttpError({
    error: {
      code: 403,
      status: 'PERMISSION_DENIED',
      message,
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'IAM_PERMISSION_DENIED',
          domain: 'iam.googleapis.com',
          metadata: { permission, resource: 'projects/p/locations/europe-west2' },
        },
      ],
    },
  });
}

/** Storage's ApiError from a JSON API error body (its `response` plays no part in the mapping). */
function apiError(body: { code: number; message: string; errors?: Array<{ reason: string }> }): ApiError {
  return new ApiError({ ...body, response: {} } as unknown as ConstructorParameters<typeof ApiError>[0]);
}

describe('fromGrpcError: PERMISSION_DENIED and UNAUTHENTICATED', () => {
  it('is a retryable PermissionDeniedError naming the permission of the ErrorInfo detail', () => {
    // Arrange
    const err = iamDenied('batch.jobs.create', "Permission 'batch.jobs.create' denied on 'projects/p/…'");

    // Act
    const mapped = fromGrpcError(err, 'CreateJob bw-acme-1', { permission: 'batch.jobs.get' });

    // Assert
    expect(err.code).toBe(GrpcCode.PERMISSION_DENIED);
    expect(mapped).toBeInstanceOf(PermissionDeniedError);
    expect(mapped).toBeInstanceOf(TransientError);
    expect(mapped.retryable).toBe(true);
    expect(mapped).toMatchObject({ permission: 'batch.jobs.create', operation: 'CreateJob bw-acme-1' });
    expect(mapped.message).toContain('missing permission batch.jobs.create');
  });

  it('falls back to the permission the operation needs when the error names none', () => {
    // Arrange: what a gRPC call with expired credentials meets
    const err = Object.assign(
      new Error('16 UNAUTHENTICATED: Request had invalid authentication credentials.'),
      {
        code: GrpcCode.UNAUTHENTICATED,
        details: 'Request had invalid authentication credentials.',
      },
    );

    // Act
    const mapped = fromGrpcError(err, 'cannot start an execution of projects/p/…/workflows/train', {
      permission: 'workflows.executions.create',
    });

    // Assert
    expect(mapped).toBeInstanceOf(PermissionDeniedError);
    expect(mapped).toMatchObject({ permission: 'workflows.executions.create' });
    expect(mapped.message).toContain('UNAUTHENTICATED');
  });

  it('names the operation when neither the error nor the caller knows the permission', () => {
    // Act
    const mapped = fromGrpcError(
      Object.assign(new Error('7 PERMISSION_DENIED: denied'), { code: GrpcCode.PERMISSION_DENIED }),
      'GetJob projects/p/locations/l/jobs/j',
    );

    // Assert
    expect(mapped).toBeInstanceOf(PermissionDeniedError);
    expect(mapped).toMatchObject({
      permission: undefined,
      operation: 'GetJob projects/p/locations/l/jobs/j',
    });
    expect(mapped.message).toMatch(
      /^GetJob projects\/p\/locations\/l\/jobs\/j: missing permission or credentials/,
    );
  });

  it('keeps other client errors permanent (INVALID_ARGUMENT)', () => {
    const mapped = fromGrpcError(
      Object.assign(new Error('bad'), { code: GrpcCode.INVALID_ARGUMENT }),
      'CreateJob x',
    );
    expect(mapped).toBeInstanceOf(PermanentError);
  });
});

describe('fromHttpError: HTTP 401 and 403 (Cloud Storage)', () => {
  it('is a retryable PermissionDeniedError naming the permission from the error list', () => {
    // Arrange: the JSON API's 403 as @google-cloud/storage raises it
    const err = apiError({
      code: 403,
      message:
        "batchwire-fn@p.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object. Permission 'storage.objects.create' denied on resource (or it may not exist).",
      errors: [{ reason: 'forbidden' }],
    });

    // Act
    const mapped = fromHttpError(err, 'create gs://b/_batchwire/claims/x.json');

    // Assert
    expect(mapped).toBeInstanceOf(PermissionDeniedError);
    expect(mapped.retryable).toBe(true);
    expect(mapped).toMatchObject({ permission: 'storage.objects.create' });
  });

  it('reads a 401 with no named permission as the operation’s own', () => {
    const err = apiError({ code: 401, message: 'Anonymous caller does not have access.' });
    const mapped = fromHttpError(err, 'list gs://b/p/', { permission: 'storage.objects.list' });
    expect(mapped).toBeInstanceOf(PermissionDeniedError);
    expect(mapped).toMatchObject({ permission: 'storage.objects.list' });
  });

  it('keeps other 4xx permanent', () => {
    expect(fromHttpError(apiError({ code: 400, message: 'bad' }), 'x')).toBeInstanceOf(PermanentError);
  });
});

describe('publishError (Pub/Sub)', () => {
  it('makes PERMISSION_DENIED a PermissionDeniedError for pubsub.topics.publish', () => {
    // Act
    const mapped = publishError(
      Object.assign(new Error('7 PERMISSION_DENIED: User not authorized to perform this action.'), {
        code: GrpcCode.PERMISSION_DENIED,
      }),
      'batch-mlops-template-acme-outputs',
    );

    // Assert
    expect(mapped).toBeInstanceOf(PermissionDeniedError);
    expect(mapped).toMatchObject({ permission: 'pubsub.topics.publish' });
  });
});

describe('deniedPermission', () => {
  it.each([
    [
      "Permission 'iam.serviceAccounts.actAs' denied on service account runner@p.iam.gserviceaccount.com",
      'iam.serviceAccounts.actAs',
    ],
    ['caller does not have run.jobs.run access to the job', 'run.jobs.run'],
    ['Permission denied on resource project p.', undefined],
    ['The caller does not have permission', undefined],
  ])('reads %j as %s', (message, permission) => {
    expect(deniedPermission(new Error(message))).toBe(permission);
  });
});
