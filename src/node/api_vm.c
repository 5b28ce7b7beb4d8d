#include <stddef.h>

#include "node/http.h"

const struct api_route api_routes_vm[] = {
    {NULL, NULL, NULL},
};
