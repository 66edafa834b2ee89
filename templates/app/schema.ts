/**
 * The events this app receives: one order each. Kappa checks every record against this schema (a
 * POST with an invalid record is refused, naming the record, the field and why, and appends
 * nothing), and the pipelines in kappa.config.ts get its type: a typo such as `o.countyr` is an
 * error that `npx kappa check` shows with its line.
 *
 * Add a field here, send it, and use it in a view; `npx kappa start` rebuilds the changed views
 * from the log.
 */
import { Type } from 'kappa';

export const Order = Type.Object({
  orderId: Type.String(),
  customer: Type.String(),
  country: Type.String(),
  product: Type.String(),
  amount: Type.Number(),
  /** When the order was placed, in milliseconds since 1970: the event time that windows use. */
  ts: Type.Integer(),
});
