/*
 * The kafka bench's client: librdkafka's producer and consumer driven as fast as they go, as
 * librdkafka's own rdkafka_performance and Kafka's kafka-producer-perf-test drive theirs. kcat reads
 * its input through stdio and copies each line; it writes each consumed record through printf,
 * which the bench then parses. This reads the input once and hands librdkafka each line in place,
 * 1,000 lines a call (rd_kafka_produce_batch, librdkafka's batch API: one call per record costs the
 * producer thread a third more CPU, and this machine has 2 cores for the client and the broker), and
 * counts consumed records itself, so the client spends its CPU on the protocol and the broker is what
 * a figure measures. Built by the bench: cc -O2 -o perf perf.c -lrdkafka.
 *
 *   perf -P -b HOST:PORT -t TOPIC [-p PARTITION] [-X name=value]... FILE
 *     One record per line of FILE (the line without its newline, no key). Without -p librdkafka's
 *     partitioner chooses. Exits 0 once every record is acknowledged, else prints the first delivery
 *     error and exits 1.
 *   perf -C -b HOST:PORT -t TOPIC -n PARTITIONS -c RECORDS [-X name=value]...
 *     Reads partitions 0..PARTITIONS-1 from their beginning until RECORDS records have come, then
 *     prints one line per partition, "PARTITION COUNT LAST_OFFSET", and exits 0; exits 1 if a
 *     partition ends (or an error comes) first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <librdkafka/rdkafka.h>

#define PARTITIONS_MAX 1024
#define CONSUME_BATCH 10000
#define PRODUCE_BATCH 1000
#define CONSUME_TIMEOUT_MS 60000

static long long delivered = 0;
static long long failed = 0;
static char first_error[512] = "";

static void die(const char *what, const char *why) {
  fprintf(stderr, "perf: %s: %s\n", what, why);
  exit(2);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
  (void)rk;
  (void)opaque;
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    delivered++;
    return;
  }
  if (failed++ == 0) snprintf(first_error, sizeof first_error, "%s", rd_kafka_err2str(msg->err));
}

static char *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) die(path, strerror(errno));
  if (fseek(f, 0, SEEK_END) != 0) die(path, strerror(errno));
  long n = ftell(f);
  if (n < 0) die(path, strerror(errno));
  rewind(f);
  char *buf = malloc((size_t)n + 1);
  if (buf == NULL) die(path, "out of memory");
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) die(path, "short read");
  fclose(f);
  *size = (size_t)n;
  return buf;
}

static int produce(rd_kafka_conf_t *conf, const char *topic, int partition, const char *path) {
  char err[512];
  size_t size;
  char *data = read_file(path, &size);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == NULL) die("rd_kafka_new", err);
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  long long sent = 0;
  static rd_kafka_message_t batch[PRODUCE_BATCH];
  for (size_t pos = 0; pos < size;) {
    int n = 0;
    for (; n < PRODUCE_BATCH && pos < size; n++) {
      char *nl = memchr(data + pos, '\n', size - pos);
      size_t len = (nl == NULL ? size : (size_t)(nl - data)) - pos;
      /* No RD_KAFKA_MSG_F_COPY: librdkafka reads the line in place; `data` outlives the flush. */
      memset(&batch[n], 0, sizeof batch[n]);
      batch[n].payload = data + pos;
      batch[n].len = len;
      pos += len + 1;
    }
    /* librdkafka enqueues a batch in order and, once its queue is full, refuses the rest of it with
     * QUEUE_FULL: serve delivery reports and enqueue the rest, so the records keep the file's order. */
    for (int done = 0; done < n;) {
      int enqueued = rd_kafka_produce_batch(rkt, partition, 0, batch + done, n - done);
      int next = done + enqueued;
      if (next < n && batch[next].err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce", rd_kafka_err2str(batch[next].err));
      for (int i = done; i < next; i++)
        if (batch[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) die("produce", rd_kafka_err2str(batch[i].err));
      sent += enqueued;
      done = next;
      if (done < n) rd_kafka_poll(rk, 100);
    }
    rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 600 * 1000);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  free(data);
  if (failed > 0 || delivered != sent) {
    fprintf(stderr, "perf: %lld of %lld records acknowledged, %lld failed (first error: %s)\n", delivered, sent, failed,
            first_error[0] != '\0' ? first_error : "none");
    return 1;
  }
  printf("%lld records acknowledged\n", delivered);
  return 0;
}

static int consume(rd_kafka_conf_t *conf, const char *topic, int partitions, long long records) {
  char err[512];
  static long long counts[PARTITIONS_MAX], last[PARTITIONS_MAX];
  static rd_kafka_message_t *batch[CONSUME_BATCH];
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == NULL) die("rd_kafka_new", err);
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
  for (int p = 0; p < partitions; p++) {
    last[p] = -1;
    if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, queue) == -1)
      die("consume_start", rd_kafka_err2str(rd_kafka_last_error()));
  }
  long long got = 0;
  int status = 0;
  while (got < records && status == 0) {
    ssize_t n = rd_kafka_consume_batch_queue(queue, CONSUME_TIMEOUT_MS, batch, CONSUME_BATCH);
    if (n <= 0) {
      fprintf(stderr, "perf: no record for %d s after %lld of %lld\n", CONSUME_TIMEOUT_MS / 1000, got, records);
      status = 1;
    }
    for (ssize_t i = 0; i < n; i++) {
      rd_kafka_message_t *m = batch[i];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        counts[m->partition]++;
        if (m->offset > last[m->partition]) last[m->partition] = m->offset;
        got++;
      } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* The end of what a partition has now: it may still be filling, so keep reading. */
      } else if (status == 0) {
        fprintf(stderr, "perf: consume: %s\n", rd_kafka_message_errstr(m));
        status = 1;
      }
      rd_kafka_message_destroy(m);
    }
  }
  for (int p = 0; p < partitions; p++) {
    rd_kafka_consume_stop(rkt, p);
    printf("%d %lld %lld\n", p, counts[p], last[p]);
  }
  rd_kafka_queue_destroy(queue);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  return status;
}

int main(int argc, char **argv) {
  const char *brokers = NULL, *topic = NULL, *mode = argc > 1 ? argv[1] : "";
  int partition = RD_KAFKA_PARTITION_UA, partitions = 1;
  long long records = 0;
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int i = 2;
  for (; i < argc - 1; i += 2) {
    const char *flag = argv[i], *value = argv[i + 1];
    if (strcmp(flag, "-b") == 0) brokers = value;
    else if (strcmp(flag, "-t") == 0) topic = value;
    else if (strcmp(flag, "-p") == 0) partition = atoi(value);
    else if (strcmp(flag, "-n") == 0) partitions = atoi(value);
    else if (strcmp(flag, "-c") == 0) records = atoll(value);
    else if (strcmp(flag, "-X") == 0) {
      char *setting = strdup(value);
      char *eq = strchr(setting, '=');
      if (eq == NULL) die(value, "expected name=value");
      *eq = '\0';
      if (rd_kafka_conf_set(conf, setting, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) die(setting, err);
      free(setting);
    } else break;
  }
  if (brokers == NULL || topic == NULL) die("usage", "perf -P|-C -b HOST:PORT -t TOPIC ... (see perf.c)");
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK) die(brokers, err);
  if (strcmp(mode, "-P") == 0 && i == argc - 1) return produce(conf, topic, partition, argv[i]);
  if (strcmp(mode, "-C") == 0 && i == argc && records > 0 && partitions > 0 && partitions <= PARTITIONS_MAX)
    return consume(conf, topic, partitions, records);
  die("usage", "perf -P -b HOST:PORT -t TOPIC [-p N] [-X k=v]... FILE | perf -C -b HOST:PORT -t TOPIC -n N -c N");
  return 2;
}
