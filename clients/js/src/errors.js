// Errors the server reports ({"message": ..., "type"?: ...}) and client errors.

export class JetstreamError extends Error {
  constructor(message, type = undefined, details = undefined) {
    super(message);
    this.name = 'JetstreamError';
    if (type !== undefined && type !== null && type !== '') this.type = type;
    if (details !== undefined) this.details = details;
  }

  static fromWire(error, fallback = 'Unknown error') {
    if (error && typeof error === 'object') {
      const message = typeof error.message === 'string' ? error.message : fallback;
      return new JetstreamError(message, typeof error.type === 'string' ? error.type : undefined);
    }
    return new JetstreamError(typeof error === 'string' ? error : fallback);
  }
}
