#include "node/secrets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#define FILE_MAX (1u << 20)

void secrets_init(struct secrets *s)
{
    memset(s, 0, sizeof(*s));
}

void secrets_release(struct secrets *s)
{
    free(s->cert_pem);
    free(s->key_pem);
    explicit_bzero(s->token, sizeof(s->token));
    memset(s, 0, sizeof(*s));
}

int secrets_read_file(const char *path, char **out, struct err *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(e, errno, "%s: %s", path, strerror(errno));
    char *buf = malloc(FILE_MAX + 1);
    size_t len = buf ? fread(buf, 1, FILE_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf)
        return err_set(e, ENOMEM, "%s: out of memory", path);
    if (bad || len > FILE_MAX) {
        free(buf);
        return err_set(e, bad ? EIO : EFBIG, "%s: %s", path,
                       bad ? "read error" : "larger than 1 MiB");
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

static int make_dir(const char *path, struct err *e)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return err_set(e, errno, "data dir %s: %s", path, strerror(errno));
    return 0;
}

/* Writes text to a new file of mode 0600 (never through an existing one). */
static int write_private(const char *path, const char *text, struct err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(e, errno, "%s: %s", path, strerror(errno));
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int rc = (n == (ssize_t)len && fsync(fd) == 0) ? 0 : -EIO;
    close(fd);
    if (rc < 0) {
        unlink(path);
        return err_set(e, EIO, "%s: write failed", path);
    }
    return 0;
}

static int make_token(struct secrets *s, struct err *e)
{
    unsigned char raw[TERND_TOKEN_LEN / 2];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return err_set(e, EIO, "getrandom: %s", strerror(errno));
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(s->token + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, sizeof(raw));
    char line[TERND_TOKEN_LEN + 2];
    snprintf(line, sizeof(line), "%s\n", s->token);
    int rc = write_private(s->token_path, line, e);
    if (!rc)
        log_info("api", "new admin token in %s", s->token_path);
    return rc;
}

static int load_token(struct secrets *s, struct err *e)
{
    char *text;
    int rc = secrets_read_file(s->token_path, &text, e);
    if (rc == -ENOENT)
        return make_token(s, e);
    if (rc < 0)
        return rc;
    size_t len = strcspn(text, "\r\n");
    if (len != TERND_TOKEN_LEN)
        rc = err_set(e, EINVAL,
                     "%s: not a token (want %d hex characters); "
                     "remove the file to get a new one",
                     s->token_path, TERND_TOKEN_LEN);
    else {
        memcpy(s->token, text, len);
        s->token[len] = '\0';
    }
    explicit_bzero(text, strlen(text));
    free(text);
    return rc;
}

/* The names a client may use for this node: its name, localhost and the
 * API host (as IP or DNS entry). */
static X509_EXTENSION *make_san(X509 *x, const struct ternd_config *cfg)
{
    char san[512];
    unsigned char addr[16];
    bool ip = inet_pton(AF_INET, cfg->api_host, addr) == 1 ||
              inet_pton(AF_INET6, cfg->api_host, addr) == 1;
    snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1,%s:%s", cfg->name,
             ip ? "IP" : "DNS", cfg->api_host);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    return X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
}

static X509 *make_cert(EVP_PKEY *key, const struct ternd_config *cfg)
{
    X509 *x = X509_new();
    unsigned char serial[8];
    if (!x || getrandom(serial, sizeof(serial), 0) != (ssize_t)sizeof(serial)) {
        X509_free(x);
        return NULL;
    }
    serial[0] &= 0x7f; /* positive */
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_NAME *name = X509_get_subject_name(x);
    ok = ok && X509_set_version(x, 2) && X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
         X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400) && X509_set_pubkey(x, key) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)cfg->name, -1, -1, 0) &&
         X509_set_issuer_name(x, name);
    X509_EXTENSION *san = ok ? make_san(x, cfg) : NULL;
    ok = san && X509_add_ext(x, san, -1) && X509_sign(x, key, EVP_sha256()) > 0;
    X509_EXTENSION_free(san);
    if (ok)
        return x;
    X509_free(x);
    return NULL;
}

static int pem_to_file(const char *path, EVP_PKEY *key, X509 *cert, struct err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return err_set(e, err, "%s: %s", path, strerror(err));
    }
    bool ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                  : PEM_write_X509(f, cert);
    if (fclose(f) != 0 || !ok) {
        unlink(path);
        return err_set(e, EIO, "%s: writing pem failed", path);
    }
    return 0;
}

static int make_cert_files(struct secrets *s, const struct ternd_config *cfg, struct err *e)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = key ? make_cert(key, cfg) : NULL;
    int rc = cert ? 0 : err_set(e, EIO, "making a self-signed certificate failed");
    if (!rc)
        rc = pem_to_file(s->key_path, key, NULL, e);
    if (!rc) {
        rc = pem_to_file(s->cert_path, NULL, cert, e);
        if (rc < 0)
            unlink(s->key_path);
    }
    if (!rc)
        log_info("api", "new self-signed certificate %s", s->cert_path);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

static int load_tls(struct secrets *s, const struct ternd_config *cfg, struct err *e)
{
    if (cfg->tls_cert[0]) {
        snprintf(s->cert_path, sizeof(s->cert_path), "%s", cfg->tls_cert);
        snprintf(s->key_path, sizeof(s->key_path), "%s", cfg->tls_key);
    } else {
        char dir[TERND_PATH_MAX + 8];
        snprintf(dir, sizeof(dir), "%s/tls", cfg->data_dir);
        int rc = make_dir(dir, e);
        if (rc < 0)
            return rc;
        snprintf(s->cert_path, sizeof(s->cert_path), "%s/cert.pem", dir);
        snprintf(s->key_path, sizeof(s->key_path), "%s/key.pem", dir);
        if (access(s->cert_path, F_OK) < 0 && access(s->key_path, F_OK) < 0) {
            rc = make_cert_files(s, cfg, e);
            if (rc < 0)
                return rc;
        }
    }
    int rc = secrets_read_file(s->cert_path, &s->cert_pem, e);
    if (!rc)
        rc = secrets_read_file(s->key_path, &s->key_pem, e);
    return rc < 0 ? rc : secrets_pin_of(s->cert_pem, s->pin, e);
}

/* curl's CURLOPT_PINNEDPUBLICKEY form: sha256 of the DER public key. */
int secrets_pin_of(const char *cert_pem, char pin[TERND_PIN_LEN + 1], struct err *e)
{
    BIO *bio = BIO_new_mem_buf(cert_pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    unsigned char *der = NULL;
    int len = x ? i2d_PUBKEY(X509_get0_pubkey(x), &der) : -1;
    X509_free(x);
    if (len <= 0)
        return err_set(e, EINVAL, "certificate: no public key to pin");
    unsigned char hash[32];
    unsigned hlen = 0;
    EVP_Digest(der, (size_t)len, hash, &hlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    memcpy(pin, "sha256//", 8);
    EVP_EncodeBlock((unsigned char *)pin + 8, hash, 32);
    return 0;
}

int secrets_load(struct secrets *s, const struct ternd_config *cfg, struct err *e)
{
    int rc = make_dir(cfg->data_dir, e);
    if (rc < 0)
        return rc;
    snprintf(s->token_path, sizeof(s->token_path), "%s/admin.token", cfg->data_dir);
    pki_paths_of(&s->pki, cfg->data_dir);
    rc = load_token(s, e);
    return rc < 0 ? rc : load_tls(s, cfg, e);
}
