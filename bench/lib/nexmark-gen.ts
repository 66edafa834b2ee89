/**
 * The Nexmark event generator of the nexmark bench (bench/nexmark.ts): persons, auctions and bids
 * written as JSON to one topic, `nexmark`, each value tagged with its `type` ("person", "auction",
 * "bid"), as Flink's Nexmark source is one stream of events of the three kinds.
 *
 * Written in TypeScript from the rules of Flink's Nexmark generator (github.com/nexmark/nexmark,
 * nexmark-flink/src/main/java/com/github/nexmark/flink/generator/: GeneratorConfig.java,
 * model/PersonGenerator.java, model/AuctionGenerator.java, model/BidGenerator.java,
 * model/PriceGenerator.java; defaults from NexmarkConfiguration.java), itself from the Nexmark paper
 * and Apache Beam's Nexmark:
 *
 *  - in every 50 events, 1 person, 3 auctions and 46 bids, in that order (event id mod 50);
 *  - person ids and auction ids count up from 1000 as those events are made; the event time advances
 *    with the event rate, 10,000 events/s (one event every 100 µs) from a fixed base time;
 *  - a bid is for a "hot" auction half the time (hotAuctionRatio 2): the first auction of the batch of
 *    100 holding the latest auction; otherwise a random auction among the 100 in flight plus 10 ids
 *    ahead. Its bidder is a hot bidder 3 times in 4 (hotBiddersRatio 4): the second person of the batch
 *    of 100 holding the latest person; otherwise a random person among the 1,000 active plus 10 ahead;
 *  - an auction's seller is a hot seller 3 times in 4 (hotSellersRatio 4), its category one of 5 from
 *    10, its reserve its initial bid plus another price, and it expires after a random time averaging
 *    the time until 100 more auctions exist;
 *  - prices are round(10^(6u) × 100) cents for u uniform in [0, 1); a bid's channel is one of four
 *    hot channels half the time, otherwise one of 10,000 (channel-N) with its fixed URL.
 *
 * Left out: the `extra` padding field Flink adds to reach average sizes (a bid's JSON here is about
 * 190 bytes already, Flink's padded bid about 100 bytes of binary row), and Flink's doubled
 * FIRST_PERSON_ID on a bid's bidder. Fixed seed, so a count always makes the same events.
 */
import type { EncodableRecord, FileLog } from '../../src/log/index.ts';
import { seededRandom } from '../../src/random.ts';

export const TOPIC = 'nexmark';
export const PARTITIONS = 4;
const BATCH_RECORDS = 1000;
const APPENDS_IN_FLIGHT_MAX = 8;
const SEED = 18;

const PERSON_PROPORTION = 1;
const AUCTION_PROPORTION = 3;
const TOTAL_PROPORTION = 50;
const FIRST_PERSON_ID = 1000;
const FIRST_AUCTION_ID = 1000;
const FIRST_CATEGORY_ID = 10;
const NUM_CATEGORIES = 5;
const HOT_AUCTION_RATIO = 2;
const HOT_BIDDERS_RATIO = 4;
const HOT_SELLERS_RATIO = 4;
/** The batch size behind "hot": the first (or second) id of the batch of 100 holding the latest id. */
const HOT_BATCH = 100;
const NUM_IN_FLIGHT_AUCTIONS = 100;
const NUM_ACTIVE_PEOPLE = 1000;
const ID_LEAD = 10;
/** 1,000,000 µs / 10,000 events/s. */
const INTER_EVENT_DELAY_US = 100;
export const BASE_TIME_MS = Date.UTC(2026, 0, 5);

const US_STATES = ['AZ', 'CA', 'ID', 'OR', 'WA', 'WY'];
const US_CITIES = 'Phoenix,Los Angeles,San Francisco,Boise,Portland,Bend,Redmond,Seattle,Kent,Cheyenne'.split(',');
const FIRST_NAMES = 'Peter,Paul,Luke,John,Saul,Vicky,Kate,Julie,Sarah,Deiter,Walter'.split(',');
const LAST_NAMES = 'Shultz,Abrams,Spencer,White,Bartels,Walton,Smith,Jones,Noris'.split(',');
const HOT_CHANNELS = ['Google', 'Facebook', 'Baidu', 'Apple'];
const CHANNELS = 10_000;

export interface Bid {
  type: 'bid';
  auction: number;
  bidder: number;
  price: number;
  channel: string;
  url: string;
  dateTime: number;
}

/** What the queries must output, per partition of the source (an output keeps its source partition). */
export interface NexmarkOracle {
  persons: number;
  auctions: number;
  bids: number;
  /** Bids per partition: q0's and q1's outputs. */
  bidsPerPartition: number[];
  /** Bids with auction % 123 == 0 per partition: q2's outputs. */
  q2PerPartition: number[];
  /** Every SAMPLE_EVERY-th bid of each partition, by its index among that partition's bids. */
  sampleBids: { partition: number; index: number; bid: Bid }[];
  /** The same for q2's selected bids. */
  sampleQ2: { partition: number; index: number; bid: Bid }[];
  /** q3's outputs per partition: auctions of category 10 whose seller exists and lives in OR, ID or CA. */
  q3PerPartition: number[];
  /** Every 101st of q3's outputs of each partition, as q3 writes it. */
  sampleQ3: { partition: number; index: number; row: Q3Row }[];
  /** q11's rows: the bidders' sessions (bids less than Q11_GAP_MS apart). */
  q11Sessions: number;
  /** q8: auctions per (seller, 10 s window), and each person's 10 s window. */
  q8Auctions: Map<string, number>;
  q8Persons: { id: number; window: number }[];
  /** q7: per 10 s window, the highest bid price and how many bids had it. */
  q7Max: Map<number, { price: number; bids: number }>;
  /** q4's closing price of each auction (its highest bid from its start to its expiry), by auction id, with its category, seller and expiry (q6). */
  q4Final: Map<number, { category: number; seller: number; expires: number; final: number }>;
  /** q5's bids per auction per hopping window (10 s, every 2 s): by window start, then auction. */
  q5Counts: Map<number, Map<number, number>>;
}

/** q7's tumbling window (Flink's q7.sql: 10 s). */
export const Q7_WINDOW_MS = 10_000;

/** What q7's checks over its view must answer: the windows and their highest prices, then the highest bids (ties included) and their prices. */
export function q7Expected(o: NexmarkOracle): { n: number; s: number }[] {
  let prices = 0;
  let bids = 0;
  let bidPrices = 0;
  for (const t of o.q7Max.values()) {
    prices += t.price;
    bids += t.bids;
    bidPrices += t.bids * t.price;
  }
  return [
    { n: o.q7Max.size, s: prices },
    { n: bids, s: bidPrices },
  ];
}

/** q8's tumbling window (Flink's q8.sql: 10 s). */
export const Q8_WINDOW_MS = 10_000;

/** What q8's check over its view must answer: the (person, window) pairs whose person opened an auction in that window, and those auctions. */
export function q8Expected(o: NexmarkOracle): { n: number; s: number }[] {
  let rows = 0;
  let auctions = 0;
  for (const p of o.q8Persons) {
    const n = o.q8Auctions.get(`${p.id}:${p.window}`);
    if (n === undefined) continue;
    rows++;
    auctions += n;
  }
  return [{ n: rows, s: auctions }];
}

/** q5's hopping windows (Flink's q5.sql: 10 s windows every 2 s). */
export const Q5_SIZE_MS = 10_000;
export const Q5_SLIDE_MS = 2_000;

/**
 * What q5's checks over its view must answer: its rows and their bids (each bid counts in 5
 * windows), then the hot items (the auctions with the most bids of each window, ties included)
 * and their bids.
 */
export function q5Expected(o: NexmarkOracle): { n: number; s: number }[] {
  let rows = 0;
  let bids = 0;
  let hot = 0;
  let hotBids = 0;
  for (const perAuction of o.q5Counts.values()) {
    const max = Math.max(...perAuction.values());
    for (const n of perAuction.values()) {
      rows++;
      bids += n;
      if (n === max) {
        hot++;
        hotBids += n;
      }
    }
  }
  return [
    { n: rows, s: bids },
    { n: hot, s: hotBids },
  ];
}

/** q11's session gap (Flink's q11.sql: 10 seconds). */
export const Q11_GAP_MS = 10_000;

/** A row of q3's output: the seller's name, city and state, and the auction's id. */
export interface Q3Row {
  name: string;
  city: string;
  state: string;
  id: number;
}

/** q3's states (Flink's q3.sql). */
export const Q3_STATES = ['OR', 'ID', 'CA'];

export const SAMPLE_EVERY = 9973;

type Random = () => number;

const nextInt = (random: Random, n: number): number => Math.floor(random() * n);

function nextString(random: Random, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += String.fromCharCode(97 + nextInt(random, 26));
  return s;
}

/** PriceGenerator.nextPrice. */
const nextPrice = (random: Random): number => Math.round(Math.pow(10, random() * 6) * 100);

/** GeneratorConfig.timestampForEvent. */
const timestampForEvent = (eventNumber: number): number =>
  BASE_TIME_MS + Math.floor((eventNumber * INTER_EVENT_DELAY_US) / 1000);

/** PersonGenerator.lastBase0PersonId. */
function lastBase0PersonId(eventId: number): number {
  const epoch = Math.floor(eventId / TOTAL_PROPORTION);
  const offset = Math.min(eventId % TOTAL_PROPORTION, PERSON_PROPORTION - 1);
  return epoch * PERSON_PROPORTION + offset;
}

/** AuctionGenerator.lastBase0AuctionId. */
function lastBase0AuctionId(eventId: number): number {
  let epoch = Math.floor(eventId / TOTAL_PROPORTION);
  let offset = eventId % TOTAL_PROPORTION;
  if (offset < PERSON_PROPORTION) {
    epoch--;
    offset = AUCTION_PROPORTION - 1;
  } else if (offset >= PERSON_PROPORTION + AUCTION_PROPORTION) offset = AUCTION_PROPORTION - 1;
  else offset -= PERSON_PROPORTION;
  return epoch * AUCTION_PROPORTION + offset;
}

/** PersonGenerator.nextBase0PersonId: one of the active people, or a few ids ahead. */
function nextBase0PersonId(eventId: number, random: Random): number {
  const numPeople = lastBase0PersonId(eventId) + 1;
  const active = Math.min(numPeople, NUM_ACTIVE_PEOPLE);
  return numPeople - active + nextInt(random, active + ID_LEAD);
}

/** AuctionGenerator.nextBase0AuctionId: one of the auctions in flight, or a few ids ahead. */
function nextBase0AuctionId(eventId: number, random: Random): number {
  const max = lastBase0AuctionId(eventId);
  const min = Math.max(max - NUM_IN_FLIGHT_AUCTIONS, 0);
  return min + nextInt(random, max - min + 1 + ID_LEAD);
}

/** The fields of a person and of an auction the oracle reads (the events have more). */
interface Person {
  type: 'person';
  id: number;
  name: string;
  city: string;
  state: string;
  [more: string]: unknown;
}

interface Auction {
  type: 'auction';
  id: number;
  seller: number;
  category: number;
  dateTime: number;
  expires: number;
  [more: string]: unknown;
}

function person(eventId: number, random: Random, dateTime: number): Person {
  const creditCard = Array.from({ length: 4 }, () => String(nextInt(random, 10_000)).padStart(4, '0')).join(' ');
  return {
    type: 'person',
    id: lastBase0PersonId(eventId) + FIRST_PERSON_ID,
    name: `${FIRST_NAMES[nextInt(random, FIRST_NAMES.length)]} ${LAST_NAMES[nextInt(random, LAST_NAMES.length)]}`,
    emailAddress: `${nextString(random, 7)}@${nextString(random, 5)}.com`,
    creditCard,
    city: US_CITIES[nextInt(random, US_CITIES.length)],
    state: US_STATES[nextInt(random, US_STATES.length)],
    dateTime,
  };
}

function auction(eventId: number, random: Random, dateTime: number): Auction {
  const seller =
    nextInt(random, HOT_SELLERS_RATIO) > 0
      ? Math.floor(lastBase0PersonId(eventId) / HOT_BATCH) * HOT_BATCH
      : nextBase0PersonId(eventId, random);
  const category = FIRST_CATEGORY_ID + nextInt(random, NUM_CATEGORIES);
  const initialBid = nextPrice(random);
  // AuctionGenerator.nextAuctionLengthMs: on average the time until NUM_IN_FLIGHT_AUCTIONS more auctions.
  const horizonMs =
    timestampForEvent(eventId + (NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION) / AUCTION_PROPORTION) - dateTime;
  const expires = dateTime + 1 + nextInt(random, Math.max(horizonMs * 2, 1));
  return {
    type: 'auction',
    id: lastBase0AuctionId(eventId) + FIRST_AUCTION_ID,
    itemName: nextString(random, 20),
    description: nextString(random, 100),
    initialBid,
    reserve: initialBid + nextPrice(random),
    dateTime,
    expires,
    seller: seller + FIRST_PERSON_ID,
    category,
  };
}

function baseUrl(random: Random): string {
  return `https://www.nexmark.com/${nextString(random, 5)}/${nextString(random, 5)}/${nextString(random, 5)}/item.htm?query=1`;
}

/** BidGenerator's four hot URLs and 10,000 channels, each with its URL (9 in 10 carry a channel_id). */
function channelTables(random: Random): { hotUrls: string[]; channelUrls: string[] } {
  const hotUrls = HOT_CHANNELS.map(() => baseUrl(random));
  const channelUrls = Array.from({ length: CHANNELS }, (_, i) => {
    const url = baseUrl(random);
    return nextInt(random, 10) > 0 ? `${url}&channel_id=${Math.abs(reverseBits32(i))}` : url;
  });
  return { hotUrls, channelUrls };
}

/** Java's Integer.reverse. */
function reverseBits32(n: number): number {
  let r = 0;
  for (let i = 0; i < 32; i++) r = (r << 1) | ((n >>> i) & 1);
  return r | 0;
}

function bid(
  eventId: number,
  random: Random,
  dateTime: number,
  tables: { hotUrls: string[]; channelUrls: string[] },
): Bid {
  const auctionId =
    nextInt(random, HOT_AUCTION_RATIO) > 0
      ? Math.floor(lastBase0AuctionId(eventId) / HOT_BATCH) * HOT_BATCH
      : nextBase0AuctionId(eventId, random);
  const bidder =
    nextInt(random, HOT_BIDDERS_RATIO) > 0
      ? Math.floor(lastBase0PersonId(eventId) / HOT_BATCH) * HOT_BATCH + 1
      : nextBase0PersonId(eventId, random);
  const price = nextPrice(random);
  let channel: string;
  let url: string;
  if (nextInt(random, 2) > 0) {
    const i = nextInt(random, HOT_CHANNELS.length);
    channel = HOT_CHANNELS[i];
    url = tables.hotUrls[i];
  } else {
    const i = nextInt(random, CHANNELS);
    channel = `channel-${i}`;
    url = tables.channelUrls[i];
  }
  return {
    type: 'bid',
    auction: auctionId + FIRST_AUCTION_ID,
    bidder: bidder + FIRST_PERSON_ID,
    price,
    channel,
    url,
    dateTime,
  };
}

/** q2's selection, as in Flink's q2.sql: `MOD(auction, 123) = 0`. */
export const q2Selects = (b: { auction: number }): boolean => b.auction % 123 === 0;

function emptyOracle(): NexmarkOracle {
  return {
    persons: 0,
    auctions: 0,
    bids: 0,
    bidsPerPartition: new Array<number>(PARTITIONS).fill(0),
    q2PerPartition: new Array<number>(PARTITIONS).fill(0),
    sampleBids: [],
    sampleQ2: [],
    q3PerPartition: new Array<number>(PARTITIONS).fill(0),
    sampleQ3: [],
    q11Sessions: 0,
    q5Counts: new Map(),
    q4Final: new Map(),
    q8Auctions: new Map(),
    q8Persons: [],
    q7Max: new Map(),
  };
}

/**
 * q4's closing prices: a bid counts for its auction when the auction was made before it (a bid's
 * auction id can run a few ids ahead; an event-time join finds no such auction) and it came between
 * the auction's start and its expiry (Flink's q4.sql: `B.dateTime BETWEEN A.dateTime AND A.expires`).
 */
function countQ4(oracle: NexmarkOracle, b: Bid, auctions: Map<number, Auction>): void {
  const a = auctions.get(b.auction);
  if (a === undefined || b.dateTime < a.dateTime || b.dateTime > a.expires) return;
  const row = oracle.q4Final.get(a.id);
  if (row === undefined)
    oracle.q4Final.set(a.id, { category: a.category, seller: a.seller, expires: a.expires, final: b.price });
  else if (b.price > row.final) row.final = b.price;
}

/** What q4's checks over its view must answer: its rows (auctions with a bid) and their closing prices. */
export function q4Expected(o: NexmarkOracle): { n: number; s: number }[] {
  let sum = 0;
  for (const r of o.q4Final.values()) sum += r.final;
  return [{ n: o.q4Final.size, s: sum }];
}

/**
 * Counts q3's output of an auction written to partition p: one of category 10 whose seller is a
 * person made before it (a seller id can run a few ids ahead of the persons made so far; an event-time
 * join finds no such person) and lives in one of Q3_STATES.
 */
function countQ3(oracle: NexmarkOracle, p: number, a: Auction, persons: Map<number, Person>): void {
  if (a.category !== 10) return;
  const seller = persons.get(a.seller);
  if (seller === undefined || !Q3_STATES.includes(seller.state)) return;
  const index = oracle.q3PerPartition[p]++;
  if (index % 101 === 0)
    oracle.sampleQ3.push({
      partition: p,
      index,
      row: { name: seller.name, city: seller.city, state: seller.state, id: a.id },
    });
}

/** Counts a bid written to partition p, keeping it when it falls on a sample index. */
function countBid(oracle: NexmarkOracle, p: number, b: Bid): void {
  oracle.bids++;
  const index = oracle.bidsPerPartition[p]++;
  if (index % SAMPLE_EVERY === 0) oracle.sampleBids.push({ partition: p, index, bid: b });
  if (!q2Selects(b)) return;
  const q2Index = oracle.q2PerPartition[p]++;
  if (q2Index % 101 === 0) oracle.sampleQ2.push({ partition: p, index: q2Index, bid: b });
}

/**
 * Writes `events` Nexmark events to `log` (which must not hold the topic yet), event id i on
 * partition i mod 4 with no key, in batches of 1,000 records, and returns what the queries must output.
 */
export async function writeNexmark(log: FileLog, events: number): Promise<NexmarkOracle> {
  await log.createTopic(TOPIC, { partitions: PARTITIONS });
  const random = seededRandom(SEED);
  const tables = channelTables(random);
  const oracle = emptyOracle();
  const pending: EncodableRecord[][] = Array.from({ length: PARTITIONS }, () => []);
  const appends: Promise<unknown>[] = [];
  const persons = new Map<number, Person>();
  const auctions = new Map<number, Auction>();
  /** Where each bidder's current session ends (bids come in event-time order). */
  const sessionEnds = new Map<number, number>();
  for (let id = 0; id < events; id++) {
    const dateTime = timestampForEvent(id);
    const rem = id % TOTAL_PROPORTION;
    const p = id % PARTITIONS;
    let value: object;
    if (rem < PERSON_PROPORTION) {
      const made = person(id, random, dateTime);
      persons.set(made.id, made);
      oracle.q8Persons.push({ id: made.id, window: Math.floor(dateTime / Q8_WINDOW_MS) * Q8_WINDOW_MS });
      value = made;
      oracle.persons++;
    } else if (rem < PERSON_PROPORTION + AUCTION_PROPORTION) {
      const made = auction(id, random, dateTime);
      countQ3(oracle, p, made, persons);
      auctions.set(made.id, made);
      const q8Key = `${made.seller}:${Math.floor(dateTime / Q8_WINDOW_MS) * Q8_WINDOW_MS}`;
      oracle.q8Auctions.set(q8Key, (oracle.q8Auctions.get(q8Key) ?? 0) + 1);
      value = made;
      oracle.auctions++;
    } else {
      const b = bid(id, random, dateTime, tables);
      countBid(oracle, p, b);
      const end = sessionEnds.get(b.bidder);
      if (end === undefined || b.dateTime > end) oracle.q11Sessions++;
      sessionEnds.set(b.bidder, b.dateTime + Q11_GAP_MS);
      countQ4(oracle, b, auctions);
      const q7Window = Math.floor(b.dateTime / Q7_WINDOW_MS) * Q7_WINDOW_MS;
      const top = oracle.q7Max.get(q7Window);
      if (top === undefined || b.price > top.price) oracle.q7Max.set(q7Window, { price: b.price, bids: 1 });
      else if (b.price === top.price) top.bids++;
      const last = Math.floor(b.dateTime / Q5_SLIDE_MS) * Q5_SLIDE_MS;
      for (let w = last - Q5_SIZE_MS + Q5_SLIDE_MS; w <= last; w += Q5_SLIDE_MS) {
        let perAuction = oracle.q5Counts.get(w);
        if (perAuction === undefined) oracle.q5Counts.set(w, (perAuction = new Map()));
        perAuction.set(b.auction, (perAuction.get(b.auction) ?? 0) + 1);
      }
      value = b;
    }
    pending[p].push({ key: null, value: JSON.stringify(value), timestamp: dateTime });
    if (pending[p].length === BATCH_RECORDS) {
      appends.push(log.appendBatch(TOPIC, p, pending[p]));
      pending[p] = [];
      if (appends.length >= APPENDS_IN_FLIGHT_MAX) await Promise.all(appends.splice(0));
    }
  }
  for (let p = 0; p < PARTITIONS; p++) if (pending[p].length > 0) appends.push(log.appendBatch(TOPIC, p, pending[p]));
  await Promise.all(appends);
  return oracle;
}
