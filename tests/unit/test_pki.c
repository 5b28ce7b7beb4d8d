/* The cluster CA and node certificates (src/node/pki.c) without etcd: a
 * certificate signed for a node chains to its CA and to no other, names the
 * hosts of its URLs (IPv4, IPv6, DNS) and has server and client use; bad
 * public keys and URLs are refused; the join token hash is SHA-256. */
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/pki.h"

static X509 *load(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(x);
    return x;
}

/* 1 when cert chains to ca (and is good for TLS clients and servers). */
static int verify(const char *ca_pem, const char *cert_pem, int purpose)
{
    X509 *ca = load(ca_pem), *x = load(cert_pem);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, x, NULL);
    X509_STORE_CTX_set_purpose(ctx, purpose);
    int ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(x);
    X509_free(ca);
    return ok;
}

static void test_sign_and_verify(void **state)
{
    (void)state;
    char *ca, *ca_key, *other, *other_key, *key, *pub, *cert;
    struct err e;
    assert_int_equal(pki_ca_make("prod", &ca, &ca_key, &e), 0);
    assert_int_equal(pki_ca_make("other", &other, &other_key, &e), 0);
    assert_int_equal(pki_key_make(&key, &pub, &e), 0);
    assert_true(pki_pub_valid(pub));
    const char *urls[] = {"https://10.0.0.2:2380", "https://[fd00::2]:2379"};
    assert_int_equal(pki_sign(ca, ca_key, pub, "n2", urls, 2, &cert, &e), 0);
    assert_int_equal(verify(ca, cert, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(verify(ca, cert, X509_PURPOSE_SSL_CLIENT), 1);
    assert_int_not_equal(verify(other, cert, X509_PURPOSE_SSL_CLIENT), 1);
    X509 *x = load(cert);
    assert_int_equal(X509_check_ip_asc(x, "10.0.0.2", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "fd00::2", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_host(x, "n2", 0, 0, NULL), 1);
    assert_int_not_equal(X509_check_ip_asc(x, "10.0.0.3", 0), 1);
    X509_free(x);
    free(ca), free(ca_key), free(other), free(other_key), free(key), free(pub), free(cert);
}

static void test_refusals(void **state)
{
    (void)state;
    char *ca, *ca_key, *key, *pub, *cert = NULL;
    struct err e;
    assert_int_equal(pki_ca_make("prod", &ca, &ca_key, &e), 0);
    assert_int_equal(pki_key_make(&key, &pub, &e), 0);
    const char *good[] = {"https://node1.example:2380"};
    const char *bad[] = {"https://:2380"};
    assert_int_equal(pki_sign(ca, ca_key, "not a key", "n2", good, 1, &cert, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "'public_key' is not a PEM public key"));
    assert_int_equal(pki_sign(ca, ca_key, pub, "n2", bad, 1, &cert, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "no host in url"));
    assert_int_equal(pki_sign(ca, "garbage", pub, "n2", good, 1, &cert, &e), -EPROTO);
    assert_null(cert);
    assert_int_equal(pki_sign(ca, ca_key, pub, "n2", good, 1, &cert, &e), 0);
    X509 *x = load(cert);
    assert_int_equal(X509_check_host(x, "node1.example", 0, 0, NULL), 1);
    X509_free(x);
    assert_false(pki_pub_valid(NULL));
    assert_false(pki_pub_valid(ca)); /* a certificate is not a public key */
    free(ca), free(ca_key), free(key), free(pub), free(cert);
}

static void test_token_hash(void **state)
{
    (void)state;
    char h[65];
    pki_token_hash("abc", h);
    assert_string_equal(h,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_and_verify),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_token_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
