/*
 * Sockets beyond stdio: vk_connect (non-blocking connect from a thread),
 * vk_accept on a listener the service opened, vk_socket_open/vk_use, the
 * limits on sockets per process, and that every descriptor a process opened
 * is closed when it ends, cleanly or not.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>

#include "kernel_test.h"

static struct sockaddr_in echo_addr;
static int listen_fd = -1;
static int connected_ok, refused;

/* A listener on 127.0.0.1, port chosen by the OS; *addr gets its address. */
static int loopback_listener(struct sockaddr_in *addr)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        memset(addr, 0, sizeof *addr);
        addr->sin_family = AF_INET;
        addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
        ck_assert_int_eq(listen(fd, 64), 0);
        socklen_t len = sizeof *addr;
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
        return fd;
}

static void connect_client(struct vk_thread *that)
{
        struct {
                struct vk_socket *s;
                ssize_t n;
                char buf[32];
        } * self;
        vk_begin();
        vk_set_timeout(that, 5000);
        vk_connect(self->s, (struct sockaddr *)&echo_addr, sizeof echo_addr);
        vk_use(that, self->s);
        vk_write("hello via connect\n", 18);
        vk_readline(self->n, self->buf, sizeof self->buf);
        if (self->n == 18 && !memcmp(self->buf, "hello via connect\n", 18))
                connected_ok++;
        vk_end();
}

START_TEST(test_connect)
{
        int fds0 = kt_count_fds();
        kt_kernel(NULL, 64 * 1024, 4096, 64);
        int efd = loopback_listener(&echo_addr);
        ck_assert_int_eq(vk_kernel_listen(kt.k, efd, kt_echo, NULL, 0), 0);
        for (int i = 0; i < 20; i++)
                kt_spawn2(connect_client, NULL, 0, -1, -1);
        kt.stop_after = 40; /* 20 clients and the 20 connections they made */
        kt_run();
        ck_assert_int_eq(connected_ok, 20);
        for (unsigned i = 0; i < kt.nexits; i++)
                ck_assert_msg(kt.exits[i].code == 0, "exit %u: %s", i, kt.exits[i].msg);
        kt.k = vk_kernel_free(kt.k);
        close(efd);
        ck_assert_int_eq(kt_count_fds(), fds0);
}
END_TEST

static void refused_client(struct vk_thread *that)
{
        struct {
                struct vk_socket *s;
                struct sockaddr_in a;
        } * self;
        vk_begin();
        self->a = echo_addr; /* a port nobody listens on any more */
        vk_connect(self->s, (struct sockaddr *)&self->a, sizeof self->a);
        vk_finally();
        if (vk_error() && vk_error()->code == ECONNREFUSED) {
                refused++;
                vk_clear_error();
        }
        vk_end();
}

START_TEST(test_connect_refused)
{
        int fds0 = kt_count_fds();
        int fd = loopback_listener(&echo_addr);
        close(fd); /* the port is now closed */
        kt_kernel(NULL, 0, 4096, 0);
        kt_spawn2(refused_client, NULL, 0, -1, -1);
        kt_run();
        ck_assert_int_eq(refused, 1);
        kt.k = vk_kernel_free(kt.k);
        ck_assert_int_eq(kt_count_fds(), fds0);
}
END_TEST

static void acceptor(struct vk_thread *that)
{
        struct {
                int i;
                ssize_t fd;
                struct vk_socket *s;
                ssize_t n;
                char buf[32];
        } * self;
        vk_begin();
        for (self->i = 0; self->i < 3; self->i++) {
                vk_accept(self->fd, listen_fd);
                self->s = vk_socket_open(that, (int)self->fd);
                if (!self->s)
                        vk_raise(ENOMEM, "no room for the socket");
                vk_use(that, self->s);
                vk_readline(self->n, self->buf, sizeof self->buf);
                vk_write(self->buf, self->n);
                vk_flush();
        }
        vk_end();
}

START_TEST(test_accept)
{
        struct sockaddr_in la;
        int fds0 = kt_count_fds();
        listen_fd = loopback_listener(&la);
        kt_kernel(NULL, 64 * 1024, 4096, 0);
        kt_spawn2(acceptor, NULL, 0, -1, -1);
        pid_t child = fork();
        if (child == 0) {
                for (int i = 0; i < 3; i++) {
                        int c = socket(AF_INET, SOCK_STREAM, 0);
                        char b[8] = {0};
                        if (connect(c, (struct sockaddr *)&la, sizeof la) < 0 ||
                            write(c, "ping\n", 5) != 5 || read(c, b, 5) != 5 ||
                            memcmp(b, "ping\n", 5))
                                _exit(1);
                        close(c);
                }
                _exit(0);
        }
        kt_run();
        int status;
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client saw no echo");
        ck_assert_int_eq(kt.nexits, 1);
        ck_assert_int_eq(kt.exits[0].code, 0);
        kt.k = vk_kernel_free(kt.k);
        close(listen_fd);
        /* the listener's duplicate and the three accepted sockets are closed */
        ck_assert_int_eq(kt_count_fds(), fds0);
}
END_TEST

static int opened, refused_open;

/* On purpose: SIGSEGV. UBSan (sanitizer builds) would stop it first. */
__attribute__((no_sanitize("undefined"))) static void store_to_null(void)
{
        *(volatile int *)0 = 1;
}

/* Opens socketpair ends until the process refuses one, then faults: the
 * teardown must close every one of them. */
static void hoarder(struct vk_thread *that)
{
        struct {
                int i;
        } * self;
        vk_begin();
        for (self->i = 0; self->i < 2 * VK_SOCKETS_MAX; self->i++) {
                int sv[2];
                socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
                close(sv[1]);
                if (vk_socket_open(that, sv[0]))
                        opened++;
                else
                        refused_open++;
        }
        store_to_null(); /* a fault: the heap is no longer trusted */
        vk_end();
}

START_TEST(test_socket_limit_and_fault_closes_all)
{
        int fds0 = kt_count_fds();
        kt_kernel(NULL, 1024 * 1024, 1024, 0);
        int64_t pid = kt_spawn2(hoarder, NULL, 0, -1, -1);
        kt_run();
        ck_assert_int_eq(opened, VK_SOCKETS_MAX);
        ck_assert_int_eq(refused_open, VK_SOCKETS_MAX);
        ck_assert_int_eq(kt_exit_of(pid)->code, EFAULT);
        ck_assert_int_eq(kt_count_fds(), fds0 + 4); /* epoll fd, wake pipe, hibernation store */
        kt.k = vk_kernel_free(kt.k);
        ck_assert_int_eq(kt_count_fds(), fds0);
}
END_TEST

/* A long-lived connection's outbound sockets: each closed after one round
 * trip, many more than VK_SOCKETS_MAX in the process's life, in a heap that
 * holds only a few sockets' rings at once. */
static int closed_rounds, emfile_seen;

static void reconnecting_client(struct vk_thread *that)
{
        struct {
                struct vk_socket *s[VK_SOCKETS_MAX + 1];
                int i;
                ssize_t n;
                char buf[32];
        } * self;
        vk_begin();
        vk_set_timeout(that, 5000);
        for (self->i = 0; self->i < 5 * VK_SOCKETS_MAX; self->i++) {
                vk_connect(self->s[0], (struct sockaddr *)&echo_addr, sizeof echo_addr);
                vk_use(that, self->s[0]);
                vk_write("again\n", 6);
                vk_readline(self->n, self->buf, sizeof self->buf);
                vk_use(that, NULL);
                ck_assert_int_eq(vk_socket_close(that, self->s[0]), 0);
                if (self->n == 6 && !memcmp(self->buf, "again\n", 6))
                        closed_rounds++;
        }
        /* The limit is on sockets open at once, and says so: EMFILE. */
        for (self->i = 0; self->i < VK_SOCKETS_MAX; self->i++)
                vk_connect(self->s[self->i], (struct sockaddr *)&echo_addr, sizeof echo_addr);
        vk_connect(self->s[VK_SOCKETS_MAX], (struct sockaddr *)&echo_addr, sizeof echo_addr);
        vk_finally();
        if (vk_error() && vk_error()->code == EMFILE) {
                emfile_seen++;
                vk_clear_error();
        }
        vk_end();
}

START_TEST(test_socket_close_reuses)
{
        int fds0 = kt_count_fds();
        /* 128 KiB with 4 KiB rings: room for the rings of VK_SOCKETS_MAX
         * sockets open at once, not for the 5 x VK_SOCKETS_MAX it opens */
        kt_kernel(NULL, 128 * 1024, 4096, 64);
        int efd = loopback_listener(&echo_addr);
        ck_assert_int_eq(vk_kernel_listen(kt.k, efd, kt_echo, NULL, 0), 0);
        int64_t pid = kt_spawn2(reconnecting_client, NULL, 0, -1, -1);
        kt.stop_after = 1 + 5 * VK_SOCKETS_MAX + VK_SOCKETS_MAX;
        kt_run();
        ck_assert_int_eq(closed_rounds, 5 * VK_SOCKETS_MAX);
        ck_assert_int_eq(emfile_seen, 1);
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
        kt.k = vk_kernel_free(kt.k);
        close(efd);
        ck_assert_int_eq(kt_count_fds(), fds0);
}
END_TEST

static Suite *socket_suite(void)
{
        Suite *s = suite_create("socket");
        TCase *tc = kt_tcase(s, "socket");
        tcase_add_test(tc, test_connect);
        tcase_add_test(tc, test_connect_refused);
        tcase_add_test(tc, test_accept);
        tcase_add_test(tc, test_socket_limit_and_fault_closes_all);
        tcase_add_test(tc, test_socket_close_reuses);
        return s;
}

KT_MAIN(socket_suite)
