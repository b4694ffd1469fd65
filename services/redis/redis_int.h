/*
 * The redis service inside vkd: its configuration (module.c), the store
 * process that owns the keyspace and the connection processes that speak
 * RESP (server.c), and the messages between them.
 *
 * Connection -> store, first byte:
 *   'H' u32 mailbox size       hello: registers the connection
 *   'C' u8 flags, commands     each: u32 argc, then argc x (u32 len, bytes);
 *                              flags & MSG_END: last message of a batch
 *   'P' raw RESP bytes         part of a command too large for one message
 *                              (or for the connection's argv): the store
 *                              parses it; acknowledged with R_ACK
 *   'N'                        send the next part of a long reply (R_MORE)
 *   'X'                        goodbye
 * Store -> connection: u8 R_* flags, then reply bytes for the client (after
 * R_ACK: u32 bytes of the 'P' part used first).
 */
#ifndef VKD_SERVICES_REDIS_INT_H
#define VKD_SERVICES_REDIS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <vk/module.h>

#include "db.h"
#include "resp.h"

#define MSG_END 0x1

#define R_DONE 0x01    /* the batch's replies are complete */
#define R_MORE 0x02    /* more reply bytes wait: ask with 'N' */
#define R_CLOSE 0x04   /* close the connection after writing */
#define R_ACK 0x08     /* a 'P' part was taken: u32 used follows */
#define R_CMDDONE 0x10 /* with R_ACK: the large command is complete */

/* Room a message header (the kernel's) takes in a mailbox, with margin. */
#define REDIS_MSG_OVERHEAD 64

enum redis_fsync { FSYNC_NO, FSYNC_EVERYSEC, FSYNC_ALWAYS };

struct redis_conf {
        struct rdb_config db;
        struct resp_limits limits;
        enum redis_fsync fsync;
        char dir[512];
        char aof_name[128];
};

void redis_conn(struct vk_thread *that);
void redis_store(struct vk_thread *that);

int redis_configure(struct redis_conf *conf, const struct vk_module_kv *kv, size_t n, char *err,
                    size_t errlen);

#endif
