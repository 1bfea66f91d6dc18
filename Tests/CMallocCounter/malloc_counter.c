// Test support: the test executable defines malloc, so every malloc call in the process (Swift's
// swift_slowAlloc included) comes here first, is counted and is passed to glibc's own allocator. free, calloc
// and realloc stay glibc's: the memory is the same allocator's either way. Counting through the Swift runtime's
// _swift_allocObject hook is not an option on Swift 6.3 for Linux: once used, retains go through an adapter
// that faults on small strings (swiftlang/swift#88924).
#include <stdatomic.h>
#include <stddef.h>
#include "CMallocCounter.h"

extern void *__libc_malloc(size_t size);

static atomic_long calls;

void *malloc(size_t size) {
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

long malloc_call_count(void) {
    return atomic_load_explicit(&calls, memory_order_relaxed);
}
