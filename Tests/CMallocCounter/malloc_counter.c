// Test support: the test executable defines malloc, so every malloc call in the process (Swift's
// swift_slowAlloc included) comes here first, is counted and is passed to glibc's own allocator. free, calloc
// and realloc stay glibc's: the memory is the same allocator's either way. Counting through the Swift runtime's
// _swift_allocObject hook is not an option on Swift 6.3 for Linux: once used, retains go through an adapter
// that faults on small strings (swiftlang/swift#88924).
//
// OpenBLAS's small-matrix sgemm kernels (the Cooper Lake build) malloc a scratch buffer on every call: that is
// the library's, not ours, so calls whose immediate caller lies in libopenblas are counted apart (dladdr on the
// return address; a thread-local guard keeps dladdr's own work, if any, out of the count).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include "CMallocCounter.h"

extern void *__libc_malloc(size_t size);

static atomic_long calls;
static atomic_long openblas_calls;
static _Thread_local int inside_counter;
// Telling OpenBLAS's calls apart costs a dladdr per malloc: only while a test measures.
static atomic_int classifying;

void malloc_counter_classify_callers(int on) {
    atomic_store_explicit(&classifying, on, memory_order_relaxed);
}

static int called_from_openblas(void *caller) {
    Dl_info info;
    return dladdr(caller, &info) != 0 && info.dli_fname != NULL && strstr(info.dli_fname, "libopenblas") != NULL;
}

void *malloc(size_t size) {
    if (!atomic_load_explicit(&classifying, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    } else if (!inside_counter) {
        inside_counter = 1;
        if (called_from_openblas(__builtin_return_address(0))) {
            atomic_fetch_add_explicit(&openblas_calls, 1, memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
        }
        inside_counter = 0;
    }
    return __libc_malloc(size);
}

long malloc_call_count(void) {
    return atomic_load_explicit(&calls, memory_order_relaxed);
}

long openblas_malloc_call_count(void) {
    return atomic_load_explicit(&openblas_calls, memory_order_relaxed);
}
