#include <stddef.h>

#include "node/http.h"

const struct api_route api_routes_storage[] = {
    {NULL, NULL, NULL},
};
