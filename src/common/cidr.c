#include "common/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cidr {
    int family;
    unsigned char addr[16];
    unsigned len; /* bytes in addr: 4 or 16 */
    unsigned prefix;
};

/* inet_pton accepts only the canonical textual forms of IPv4 and IPv6. */
static int parse_addr(const char *text, unsigned char out[16], int *family)
{
    if (inet_pton(AF_INET, text, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -EINVAL;
}

static int cidr_parse(const char *text, struct cidr *c, struct err *e)
{
    char buf[64];
    size_t n = strlen(text);
    const char *slash = strchr(text, '/');
    if (n >= sizeof(buf) || !slash)
        return err_set(e, EINVAL, "'%.63s' is not a cidr like 10.0.1.0/24 or fd00::/64",
                       text);
    memcpy(buf, text, (size_t)(slash - text));
    buf[slash - text] = '\0';
    if (parse_addr(buf, c->addr, &c->family) < 0)
        return err_set(e, EINVAL, "cidr '%s': '%s' is not an ipv4 or ipv6 address", text,
                       buf);
    c->len = c->family == AF_INET ? 4 : 16;
    const char *p = slash + 1;
    size_t digits = strspn(p, "0123456789");
    unsigned max = c->len * 8;
    if (digits == 0 || digits > 3 || p[digits] || (digits > 1 && p[0] == '0') ||
        (unsigned)atoi(p) > max)
        return err_set(e, EINVAL, "cidr '%s': prefix length must be 0..%u", text, max);
    c->prefix = (unsigned)atoi(p);
    return 0;
}

/* The first prefix bits of a and b are equal. */
static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int cidr_check(const char *cidr, struct err *e)
{
    struct cidr c;
    int rc = cidr_parse(cidr, &c, e);
    if (rc)
        return rc;
    unsigned char net[16] = {0};
    memcpy(net, c.addr, c.prefix / 8 + (c.prefix % 8 != 0));
    if (c.prefix % 8)
        net[c.prefix / 8] &= (unsigned char)(0xff << (8 - c.prefix % 8));
    if (memcmp(net, c.addr, c.len) != 0) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(c.family, net, text, sizeof(text));
        return err_set(e, EINVAL, "cidr '%s' has host bits set (the network is %s/%u)",
                       cidr, text, c.prefix);
    }
    return 0;
}

/* "[fd00::1]" as written in URLs and host:port: the brackets go. */
static int addr_parse(const char *addr, unsigned char out[16], int *family, struct err *e)
{
    char buf[64];
    size_t n = strlen(addr);
    if (n >= sizeof(buf))
        return err_set(e, EINVAL, "'%.63s...' is not an ip address", addr);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']')
        snprintf(buf, sizeof(buf), "%.*s", (int)(n - 2), addr + 1);
    else
        snprintf(buf, sizeof(buf), "%s", addr);
    if (parse_addr(buf, out, family) < 0)
        return err_set(e, EINVAL, "'%s' is not an ip address", buf);
    return 0;
}

int cidr_contains(const char *cidr, const char *addr, bool *inside, struct err *e)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct cidr c;
    unsigned char a[16];
    int family;
    *inside = false;
    int rc = cidr_parse(cidr, &c, e);
    if (!rc)
        rc = addr_parse(addr, a, &family, e);
    if (rc)
        return rc;
    const unsigned char *bytes = a;
    /* ::ffff:10.0.1.5 is the IPv4 address 10.0.1.5 */
    if (family == AF_INET6 && c.family == AF_INET && memcmp(a, v4mapped, 12) == 0) {
        family = AF_INET;
        bytes = a + 12;
    }
    *inside = family == c.family && prefix_equal(bytes, c.addr, c.prefix);
    return 0;
}
