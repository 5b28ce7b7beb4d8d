#include "node/pki.h"

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

#define CA_DAYS 3650L
#define NODE_DAYS 3650L

void pki_paths_of(struct pki_paths *p, const char *data_dir)
{
    snprintf(p->dir, sizeof(p->dir), "%s/pki", data_dir);
    snprintf(p->ca, sizeof(p->ca), "%s/ca.pem", p->dir);
    snprintf(p->cert, sizeof(p->cert), "%s/node.pem", p->dir);
    snprintf(p->key, sizeof(p->key), "%s/node.key", p->dir);
}

bool pki_present(const struct pki_paths *p)
{
    return access(p->ca, R_OK) == 0 && access(p->cert, R_OK) == 0 &&
           access(p->key, R_OK) == 0;
}

void pki_remove(const struct pki_paths *p)
{
    unlink(p->key);
    unlink(p->cert);
    unlink(p->ca);
}

static char *bio_text(BIO *bio)
{
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    return len > 0 ? strndup(data, (size_t)len) : NULL;
}

static char *key_pem(EVP_PKEY *key, bool private)
{
    BIO *bio = BIO_new(BIO_s_mem());
    bool ok = bio &&
              (private ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                       : PEM_write_bio_PUBKEY(bio, key));
    char *text = ok ? bio_text(bio) : NULL;
    BIO_free(bio);
    return text;
}

static char *cert_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = bio && PEM_write_bio_X509(bio, x) ? bio_text(bio) : NULL;
    BIO_free(bio);
    return text;
}

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    bool ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Serial, validity, subject CN and public key of a new certificate. */
static X509 *cert_new(EVP_PKEY *pub, const char *cn, long days)
{
    X509 *x = X509_new();
    unsigned char serial[16];
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
         X509_gmtime_adj(X509_getm_notAfter(x), days * 86400) && X509_set_pubkey(x, pub) &&
         X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"tern",
                                    -1, -1, 0) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                    -1, -1, 0);
    if (ok)
        return x;
    X509_free(x);
    return NULL;
}

int pki_ca_make(const char *name, char **cert_out, char **key_out, struct err *e)
{
    char cn[96];
    snprintf(cn, sizeof(cn), "tern cluster %s CA", name);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = key ? cert_new(key, cn, CA_DAYS) : NULL;
    bool ok = x && X509_set_issuer_name(x, X509_get_subject_name(x)) &&
              add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
              add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
              add_ext(x, x, NID_subject_key_identifier, "hash") &&
              X509_sign(x, key, EVP_sha256()) > 0;
    *cert_out = ok ? cert_pem(x) : NULL;
    *key_out = ok ? key_pem(key, true) : NULL;
    X509_free(x);
    EVP_PKEY_free(key);
    if (*cert_out && *key_out)
        return 0;
    free(*cert_out);
    free(*key_out);
    *cert_out = *key_out = NULL;
    return err_set(e, EIO, "cluster %s: making its certificate authority failed", name);
}

int pki_key_make(char **priv_out, char **pub_out, struct err *e)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    *priv_out = key ? key_pem(key, true) : NULL;
    *pub_out = key ? key_pem(key, false) : NULL;
    EVP_PKEY_free(key);
    if (*priv_out && *pub_out)
        return 0;
    free(*priv_out);
    free(*pub_out);
    *priv_out = *pub_out = NULL;
    return err_set(e, EIO, "making a node key failed");
}

/* "https://HOST:PORT" or "https://[V6]:PORT" -> "IP:HOST" or "DNS:HOST". */
static int san_of_url(const char *url, char *out, size_t size)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    char host[128];
    size_t len = h[0] == '[' ? strcspn(h + 1, "]") : strcspn(h, ":/");
    if (len == 0 || len >= sizeof(host))
        return -EINVAL;
    memcpy(host, h + (h[0] == '['), len);
    host[len] = '\0';
    if (strpbrk(host, ", \t"))
        return -EINVAL;
    unsigned char addr[16];
    bool ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    snprintf(out, size, ",%s:%s", ip ? "IP" : "DNS", host);
    return 0;
}

static int san_build(const char *name, const char *const urls[], unsigned n, char *out,
                     size_t size, struct err *e)
{
    int used = snprintf(out, size, "DNS:%s,DNS:localhost,IP:127.0.0.1", name);
    for (unsigned i = 0; i < n; i++) {
        char one[160];
        if (san_of_url(urls[i], one, sizeof(one)) < 0)
            return err_set(e, EINVAL, "node %s: no host in url '%.120s'", name, urls[i]);
        if (!strstr(out, one) && (size_t)used + strlen(one) < size)
            used += snprintf(out + used, size - (size_t)used, "%s", one);
    }
    return 0;
}

static EVP_PKEY *read_key(const char *pem, bool private)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = !bio      ? NULL
                  : private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                            : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return k;
}

static X509 *read_cert(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return x;
}

static bool sign_node(X509 *x, X509 *ca, EVP_PKEY *ca_key, const char *san)
{
    return X509_set_issuer_name(x, X509_get_subject_name(ca)) &&
           add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") &&
           add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyAgreement") &&
           add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth") &&
           add_ext(x, ca, NID_authority_key_identifier, "keyid") &&
           add_ext(x, ca, NID_subject_alt_name, san) &&
           X509_sign(x, ca_key, EVP_sha256()) > 0;
}

int pki_sign(const char *ca_cert_pem, const char *ca_key_pem, const char *pub_pem,
             const char *name, const char *const urls[], unsigned n_urls, char **out,
             struct err *e)
{
    char san[1024];
    *out = NULL;
    int rc = san_build(name, urls, n_urls, san, sizeof(san), e);
    if (rc)
        return rc;
    EVP_PKEY *pub = read_key(pub_pem, false);
    if (!pub)
        return err_set(e, EINVAL, "node %s: 'public_key' is not a PEM public key", name);
    X509 *ca = read_cert(ca_cert_pem);
    EVP_PKEY *ca_key = read_key(ca_key_pem, true);
    X509 *x = ca && ca_key ? cert_new(pub, name, NODE_DAYS) : NULL;
    if (!ca || !ca_key)
        rc = err_set(e, EPROTO, "the cluster's CA in %s / %s does not load",
                     TERN_KEY_CA_CERT, TERN_KEY_CA_KEY);
    else if (!x || !sign_node(x, ca, ca_key, san) || !(*out = cert_pem(x)))
        rc = err_set(e, EIO, "node %s: signing its certificate failed", name);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(pub);
    return rc;
}

static int write_one(const char *path, const char *text, mode_t mode, struct err *e)
{
    char tmp[TERND_PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return err_set(e, errno, "%s: %s", tmp, strerror(errno));
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return err_set(e, EIO, "%s: write failed", path);
    }
    return 0;
}

int pki_write(const struct pki_paths *p, const char *ca_pem, const char *cert,
              const char *key, struct err *e)
{
    if (mkdir(p->dir, 0700) < 0 && errno != EEXIST)
        return err_set(e, errno, "%s: %s", p->dir, strerror(errno));
    int rc = key ? write_one(p->key, key, 0600, e) : 0;
    if (!rc && cert)
        rc = write_one(p->cert, cert, 0644, e);
    if (!rc && ca_pem)
        rc = write_one(p->ca, ca_pem, 0644, e);
    return rc;
}

void pki_token_hash(const char *token, char out[65])
{
    unsigned char md[32];
    unsigned len = 0;
    EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

bool pki_pub_valid(const char *pem)
{
    EVP_PKEY *k = pem && strlen(pem) < PKI_PEM_MAX ? read_key(pem, false) : NULL;
    EVP_PKEY_free(k);
    return k != NULL;
}
