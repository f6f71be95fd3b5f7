/*  mg_msg.c - link messages: msgpack codec. */
#include "mg_msg.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "mg_text.h"
#include "mg_wire.h"

const char *mg_msg_name(int type)
{
    switch (type) {
    case MG_MSG_HELLO: return "HELLO";
    case MG_MSG_RECON_Q: return "RECON_Q";
    case MG_MSG_RECON_A: return "RECON_A";
    case MG_MSG_RECORDS: return "RECORDS";
    case MG_MSG_WANT: return "WANT";
    default: return "?";
    }
}

void mg_msg_clear(mg_msg_t *msg)
{
    free(msg->items);
    free(msg->item_lens);
    memset(msg, 0, sizeof *msg);
}

static bool s_copy_str(const msgpack_object *o, char *out, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap
        || !mg_utf8_valid(o->via.str.ptr, o->via.str.size))
        return false;
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    return true;
}

/* msgpack_unpack_next leaves str and bin objects pointing into the input
   buffer (zero-copy), so the payload and item pointers kept in `out`
   stay valid after the unpacked zone is freed, as long as `data` is. */
int mg_msg_decode(const uint8_t *data, size_t len, mg_msg_t *out,
                  mg_why_t *why)
{
    memset(out, 0, sizeof *out);
    if (len > MG_MSG_MAX)
        return mg_why_set(why, MG_ERR_TOO_LARGE, "message trop grand (%zu octets)", len);
    int rc = mg_wire_scan(data, len, why);
    if (rc != MG_OK)
        return rc;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *) data, len, &off)
            != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_unpacked_destroy(&u);
        return mg_why_set(why, MG_ERR_MALFORMED, "message msgpack mal formé");
    }
    const msgpack_object *o = &u.data;
    rc = MG_ERR_MALFORMED;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1
        || o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        mg_why_set(why, rc, "message sans type");
        goto done;
    }
    const msgpack_object *f = o->via.array.ptr;
    uint32_t n = o->via.array.size;
    uint64_t type = f[0].via.u64;
    switch (type) {
    case MG_MSG_HELLO: {
        if (n < 5 || f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
            || f[2].type != MSGPACK_OBJECT_BIN || f[2].via.bin.size != MG_KEY_BYTES
            || f[3].type != MSGPACK_OBJECT_ARRAY
            || f[3].via.array.size > MG_ENDPOINTS_MAX
            || !s_copy_str(&f[4], out->name, sizeof out->name)) {
            mg_why_set(why, rc, "HELLO mal formé");
            goto done;
        }
        /* Extra trailing elements are allowed: a later version may add. */
        out->version = f[1].via.u64 > UINT32_MAX ? UINT32_MAX : (uint32_t) f[1].via.u64;
        memcpy(out->key, f[2].via.bin.ptr, MG_KEY_BYTES);
        for (uint32_t i = 0; i < f[3].via.array.size; i++) {
            if (!s_copy_str(&f[3].via.array.ptr[i], out->endpoints[i],
                            sizeof out->endpoints[i])) {
                mg_why_set(why, rc, "HELLO : adresse invalide");
                goto done;
            }
        }
        out->endpoint_count = f[3].via.array.size;
        break;
    }
    case MG_MSG_RECON_Q:
    case MG_MSG_RECON_A:
        if (n != 2 || f[1].type != MSGPACK_OBJECT_BIN) {
            mg_why_set(why, rc, "%s mal formé", mg_msg_name((int) type));
            goto done;
        }
        out->payload = (const uint8_t *) f[1].via.bin.ptr;
        out->payload_len = f[1].via.bin.size;
        break;
    case MG_MSG_RECORDS:
    case MG_MSG_WANT: {
        if (n != 2 || f[1].type != MSGPACK_OBJECT_ARRAY) {
            mg_why_set(why, rc, "%s mal formé", mg_msg_name((int) type));
            goto done;
        }
        uint32_t count = f[1].via.array.size;
        if (type == MG_MSG_WANT && count > MG_WANT_MAX) {
            mg_why_set(why, MG_ERR_TOO_LARGE, "WANT : trop d'identifiants");
            rc = MG_ERR_TOO_LARGE;
            goto done;
        }
        out->items = calloc(count ? count : 1, sizeof *out->items);
        out->item_lens = calloc(count ? count : 1, sizeof *out->item_lens);
        if (!out->items || !out->item_lens) {
            rc = MG_ERR_NOMEM;
            goto done;
        }
        for (uint32_t i = 0; i < count; i++) {
            const msgpack_object *it = &f[1].via.array.ptr[i];
            if (it->type != MSGPACK_OBJECT_BIN
                || (type == MG_MSG_WANT && it->via.bin.size != MG_VID_BYTES)
                || (type == MG_MSG_RECORDS && it->via.bin.size > MG_RECORD_MAX)) {
                mg_why_set(why, rc, "%s : élément %u invalide",
                           mg_msg_name((int) type), i);
                goto done;
            }
            out->items[i] = (const uint8_t *) it->via.bin.ptr;
            out->item_lens[i] = it->via.bin.size;
        }
        out->count = count;
        break;
    }
    default:
        mg_why_set(why, rc, "type de message inconnu (%llu)",
                   (unsigned long long) type);
        goto done;
    }
    out->type = (mg_msg_type_t) type;
    rc = MG_OK;
done:
    msgpack_unpacked_destroy(&u);
    if (rc != MG_OK) {
        free(out->items);
        free(out->item_lens);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

static int s_finish(msgpack_sbuffer *sb, int err, uint8_t **out, size_t *out_len)
{
    if (err) {
        msgpack_sbuffer_destroy(sb);
        return MG_ERR_NOMEM;
    }
    *out = (uint8_t *) sb->data;
    *out_len = sb->size;
    return MG_OK;
}

int mg_msg_hello(const uint8_t key[MG_KEY_BYTES], const char *const *endpoints,
                 size_t endpoint_count, const char *name, uint8_t **out,
                 size_t *out_len)
{
    if (endpoint_count > MG_ENDPOINTS_MAX)
        endpoint_count = MG_ENDPOINTS_MAX;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int err = msgpack_pack_array(&pk, 5);
    err |= msgpack_pack_uint8(&pk, MG_MSG_HELLO);
    err |= msgpack_pack_uint32(&pk, MG_PROTOCOL_VERSION);
    err |= msgpack_pack_bin_with_body(&pk, key, MG_KEY_BYTES);
    err |= msgpack_pack_array(&pk, endpoint_count);
    for (size_t i = 0; i < endpoint_count; i++)
        err |= msgpack_pack_str_with_body(&pk, endpoints[i], strlen(endpoints[i]));
    /* At most 255 bytes, cut on a character boundary: a name split inside
       a UTF-8 sequence would make every peer refuse the HELLO. */
    size_t nlen = strnlen(name, 255);
    if (nlen == 255)
        while (nlen > 0 && ((unsigned char) name[nlen] & 0xC0) == 0x80)
            nlen--;
    err |= msgpack_pack_str_with_body(&pk, name, nlen);
    return s_finish(&sb, err, out, out_len);
}

int mg_msg_recon(mg_msg_type_t type, const uint8_t *payload, size_t len,
                 uint8_t **out, size_t *out_len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int err = msgpack_pack_array(&pk, 2);
    err |= msgpack_pack_uint8(&pk, (uint8_t) type);
    err |= msgpack_pack_bin_with_body(&pk, payload, len);
    return s_finish(&sb, err, out, out_len);
}

int mg_msg_list(mg_msg_type_t type, const uint8_t *const *items,
                const size_t *lens, size_t count, uint8_t **out,
                size_t *out_len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int err = msgpack_pack_array(&pk, 2);
    err |= msgpack_pack_uint8(&pk, (uint8_t) type);
    err |= msgpack_pack_array(&pk, count);
    for (size_t i = 0; i < count; i++)
        err |= msgpack_pack_bin_with_body(&pk, items[i], lens[i]);
    return s_finish(&sb, err, out, out_len);
}
