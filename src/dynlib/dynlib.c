/* dynlib — load a shared library on first use (see dynlib.h). */
#include "dynlib/dynlib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define LIBS_MAX 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const char *soname;
    void *handle;
} libs[LIBS_MAX];
static char last_error[256];

const char *nhid_dynlib_error(void)
{
    return last_error;
}

void *nhid_dynlib_symbol(const char *soname, const char *symbol)
{
    void *handle = NULL;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < LIBS_MAX; i++) {
        if (libs[i].soname && strcmp(libs[i].soname, soname) == 0) {
            handle = libs[i].handle;
            break;
        }
        if (libs[i].soname == NULL) {
            handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
            if (handle == NULL) {
                snprintf(last_error, sizeof(last_error), "cannot load %s: %s", soname,
                         dlerror());
                break;
            }
            libs[i].soname = soname;
            libs[i].handle = handle;
            break;
        }
    }
    void *sym = handle ? dlsym(handle, symbol) : NULL;
    if (handle && sym == NULL)
        snprintf(last_error, sizeof(last_error), "%s: no symbol %s", soname, symbol);
    pthread_mutex_unlock(&lock);
    return sym;
}
