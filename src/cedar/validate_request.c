/* validate_request.c — request and entity validation against a schema. */
#include "cedar/schema.h"

int cedar_validate_request(const struct cedar_schema *s, const struct cedar_request *req,
                           char *err, size_t errlen)
{
    (void)s;
    (void)req;
    (void)err;
    (void)errlen;
    return NHID_ERR_UNSUPPORTED;
}

int cedar_validate_entities(const struct cedar_schema *s, const struct cedar_entities *es,
                            char *err, size_t errlen)
{
    (void)s;
    (void)es;
    (void)err;
    (void)errlen;
    return NHID_ERR_UNSUPPORTED;
}
