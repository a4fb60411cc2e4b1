/** The public event catalogue as sellers read it (GET /v1/event-types): each type its webhooks may carry, with the JSON Schema of its data. */
import { PUBLIC_EVENT_TYPES, type EventType } from '../events/catalogue.js';
import { webhookTypeOf } from './fan-out.js';

/** Types so frequent they go only to the endpoints that name them (a subscription never means "everything" here, so this is information). */
const HIGH_VOLUME = new Set(['bid.placed']);

export interface EventTypeView {
  name: string;
  version: number;
  type: string;
  description: string;
  highVolume: boolean;
  schema: EventType['schema'];
}

export const EVENT_TYPE_VIEWS: EventTypeView[] = PUBLIC_EVENT_TYPES.map((e) => ({
  name: e.publicName, version: e.version, type: webhookTypeOf(e), description: e.description, highVolume: HIGH_VOLUME.has(e.publicName), schema: e.schema,
}));

const byName = new Map(EVENT_TYPE_VIEWS.map((e) => [e.name, e]));
export const eventTypeViewOf = (name: string): EventTypeView | undefined => byName.get(name);
